package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class RunSecretTest {
  private static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void macIsDeterministicPerKeyAndSeparatesPartsPurposesAndKeys() {
    RunSecret k = RunSecret.random();
    assertArrayEquals(k.mac("p", b("ab"), b("c")), k.mac("p", b("ab"), b("c")));
    assertEquals(RunSecret.MAC_BYTES, k.mac("p").length);
    assertFalse(Arrays.equals(k.mac("p", b("ab"), b("c")), k.mac("p", b("a"), b("bc"))), "parts are length-prefixed");
    assertFalse(Arrays.equals(k.mac("p", b("x")), k.mac("q", b("x"))), "the purpose is part of the input");
    assertFalse(Arrays.equals(k.mac("p", b("x")), RunSecret.random().mac("p", b("x"))), "keys differ");
  }

  @Test
  void matchesComparesWholeValues() {
    byte[] mac = RunSecret.random().mac("p");
    assertTrue(RunSecret.matches(mac, mac.clone()));
    byte[] flipped = mac.clone();
    flipped[31] ^= 1;
    assertFalse(RunSecret.matches(mac, flipped));
    assertFalse(RunSecret.matches(mac, Arrays.copyOf(mac, 16)));
    assertFalse(RunSecret.matches(mac, null));
  }

  @Test
  void derivedKeysDependOnBothTheBaseSecretAndTheRun() {
    byte[] spark = b("spark's secret");
    assertEquals(RunSecret.derivedFrom(spark, "run-1"), RunSecret.derivedFrom(spark, "run-1"));
    assertNotEquals(RunSecret.derivedFrom(spark, "run-1"), RunSecret.derivedFrom(spark, "run-2"));
    assertNotEquals(RunSecret.derivedFrom(spark, "run-1"), RunSecret.derivedFrom(b("other"), "run-1"));
    assertThrows(IllegalArgumentException.class, () -> RunSecret.derivedFrom(new byte[0], "run-1"));
  }

  @Test
  void survivesJavaSerialisationAndNeverPrintsItsKey() throws Exception {
    RunSecret k = RunSecret.random();
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(k);
    }
    try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
      assertEquals(k, in.readObject());
    }
    assertEquals("RunSecret(redacted)", k.toString());
  }
}
