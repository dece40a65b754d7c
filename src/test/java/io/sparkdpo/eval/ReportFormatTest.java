package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class ReportFormatTest {
  @Test
  void decimalsFollowTheMagnitude() {
    assertEquals("0.0123", ReportFormat.num(0.012345));
    assertEquals("1.235", ReportFormat.num(1.23456));
    assertEquals("123.5", ReportFormat.num(123.456));
    assertEquals("-0.0045", ReportFormat.num(-0.0045));
    assertEquals("0.0000", ReportFormat.num(-0.00001));
    assertEquals("n/a", ReportFormat.num(Double.NaN));
  }

  @Test
  void signedNumbersShowAPlusExceptForZero() {
    assertEquals("+0.0123", ReportFormat.signed(0.0123));
    assertEquals("-0.0123", ReportFormat.signed(-0.0123));
    assertEquals("0.0000", ReportFormat.signed(0.0));
  }

  @Test
  void percentagesForConfidenceAndProportions() {
    assertEquals("95%", ReportFormat.percent(0.95));
    assertEquals("99.9%", ReportFormat.percent(0.999));
    assertEquals("61.2%", ReportFormat.percentOf(0.6124));
  }
}
