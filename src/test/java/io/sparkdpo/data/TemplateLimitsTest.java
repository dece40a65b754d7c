package io.sparkdpo.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Storage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Hostile chat templates end in a template error within the limits, never a hang or a dead JVM. */
class TemplateLimitsTest {
  private static final List<Turn> TURNS = List.of(Turn.user("Hi"), Turn.assistant("Hello"));
  /** 0.5 s and 1 Mi chars (256 MiB allocated): small enough for a test, far above what real templates need. */
  private static final TemplateLimits TIGHT = new TemplateLimits(500_000_000L, 1L << 20);
  /** 0.5 s, and limits on size that a loop cannot reach in that time (64 GiB allocated): the deadline stops it. */
  private static final TemplateLimits DEADLINE = new TemplateLimits(500_000_000L, 1L << 30);
  /** A minute, 1 Mi chars: the allocation limit stops it. */
  private static final TemplateLimits ALLOCATION = new TemplateLimits(60_000_000_000L, 1L << 20);

  @TempDir
  Path dir;

  private static BadRow refusal(String source) {
    return refusal(source, TIGHT);
  }

  private static BadRow refusal(String source, TemplateLimits limits) {
    JinjaChatTemplate t = new JinjaChatTemplate("t", source, Map.of(), limits);
    // without the limits these run for hours: fail the test instead of hanging it
    BadRow e = assertTimeoutPreemptively(Duration.ofSeconds(60),
        () -> assertThrows(BadRow.class, () -> t.render(TURNS, false), source));
    assertEquals(QuarantineReason.TEMPLATE_ERROR, e.reason());
    return e;
  }

  @Test
  void nestedLoopsStopAtTheRenderDeadline() {
    long start = System.nanoTime();
    BadRow e = refusal("{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
        + "{% endfor %}{% endfor %}{% endfor %}", DEADLINE);
    long ms = (System.nanoTime() - start) / 1_000_000;
    assertEquals("chat template failed: the chat template did not finish rendering within "
        + "prepare.template_timeout_s (0.5 s)", e.detail());
    assertTrue(ms >= 450, "stopped after " + ms + " ms, before its deadline");
    // a loop of method calls and nothing else to render
    assertTrue(refusal("{% for a in range(100000) %}{% for b in range(100000) %}{% set x = 'a'.upper() %}"
        + "{% endfor %}{% endfor %}", DEADLINE).detail().contains("template_timeout_s"));
  }

  @Test
  void aRenderingThatKeepsAllocatingStopsAtItsAllocationLimit() {
    assertEquals("chat template failed: the chat template allocated more than 256 MiB while rendering one "
        + "conversation (64 x prepare.template_max_chars)", refusal("{% for a in range(100000) %}"
        + "{% for b in range(100000) %}{% set s = 'x' ~ a ~ '-' ~ b %}{% endfor %}{% endfor %}", ALLOCATION).detail());
  }

  @Test
  void strMethodsCheckTheLengthOfTheirResultBeforeBuildingIt() {
    // 4 + 5 x 288,889 chars: the range joined by commas, inserted around each char
    assertEquals("chat template failed: the chat template built a string of 1444449 chars, more than "
        + "prepare.template_max_chars (1048576)",
        refusal("{% set big = range(50000) | join(',') %}{{ 'abcd'.replace('', big) }}").detail());
    assertEquals("chat template failed: the chat template built a string of 1488880 chars, more than "
        + "prepare.template_max_chars (1048576)", refusal("{{ 'abcdefghij'.join(range(100000)) }}").detail());
  }

  @Test
  void growingStringsAndOutputsAreBounded() {
    // doubling a string: 2^25 chars after 25 rounds
    assertTrue(refusal("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
        + "{% endfor %}{{ ns.s | length }}").detail().startsWith("chat template failed: "));
    assertTrue(refusal("{% set s = 'abcdefgh' %}{% for i in range(20) %}{% set s = s.replace('a', s) %}"
        + "{% endfor %}").detail().contains("prepare.template_max_chars (1048576)"));
    assertTrue(refusal("{% for i in range(100000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}{% endfor %}").detail()
        .startsWith("chat template failed: "));
  }

  @Test
  void deepNestingIsATemplateErrorNotAStackOverflowOrAStall() {
    String deepTags = "{% if true %}".repeat(20_000) + "x" + "{% endif %}".repeat(20_000);
    assertTrue(refusal(deepTags).detail().startsWith("chat template failed: "));
    // Jinjava's parser is quadratic in bracket nesting (200k levels: minutes): refused before parsing
    assertEquals("chat template failed: brackets nested more than 64 deep",
        refusal("{{ " + "(".repeat(200_000) + "1" + ")".repeat(200_000) + " }}").detail());
    assertEquals("chat template failed: brackets nested more than 64 deep",
        refusal("{{ " + "[".repeat(65) + "]".repeat(65) + " }}").detail());
  }

  @Test
  void aHostileTemplateIsRefusedAtTheDriversProbeWithAClearError() throws Exception {
    TextTokenizer tok = TextTokenizer.load(ByteTokenizer.write(dir.resolve("t"), null).toString(), Storage.local());
    Path file = dir.resolve("loops.jinja");
    Files.writeString(file, "{% for m in messages %}{% for a in range(100000) %}{% for b in range(100000) %}"
        + "{{ '' }}{% endfor %}{% endfor %}{{ m['content'] }}{% endfor %}");
    IllegalArgumentException e = assertTimeoutPreemptively(Duration.ofSeconds(60), () -> assertThrows(
        IllegalArgumentException.class, () -> TemplateSpec.resolve(file.toString(), tok, Storage.local(), DEADLINE)));
    assertEquals("prepare.template: '" + file + "' cannot render a one-turn conversation: chat template failed: "
        + "the chat template did not finish rendering within prepare.template_timeout_s (0.5 s)", e.getMessage());
  }

  @Test
  void rowsThatMakeATemplateExceedItsLimitsAreQuarantinedAsTemplateErrors() throws Exception {
    // fine on the probe's one short turn, endless on a row whose content asks for it
    String source = "{% for m in messages %}{% if 'loop' in m['content'] %}{% for a in range(100000) %}"
        + "{% for b in range(100000) %}{{ '' }}{% endfor %}{% endfor %}{% endif %}{{ m['role'] }}: "
        + "{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}";
    TokenizerFiles files = TokenizerFiles.read(ByteTokenizer.write(dir.resolve("t"), null).toString(),
        Storage.local());
    Path file = dir.resolve("sometimes.jinja");
    Files.writeString(file, source);
    TemplateSpec spec = TemplateSpec.resolve(file.toString(), TextTokenizer.of(files), Storage.local(), DEADLINE);
    RowPreparer preparer = new RowPreparer(new PrepareSpec(files, spec,
        new Truncation(256, 64, true, false), false, 0.0, 42, io.sparkdpo.config.PrepareSettings.Format.TRL,
        Map.of()));
    List<RowOutcome> out = preparer.prepare(List.of(
        new RawRecord("f", 1, "{\"prompt\": \"please loop\", \"chosen\": \"a\", \"rejected\": \"b\"}".getBytes()),
        new RawRecord("f", 2, "{\"prompt\": \"hi\", \"chosen\": \"a\", \"rejected\": \"b\"}".getBytes())));
    QuarantineRecord q = (QuarantineRecord) out.get(0);
    assertEquals("template_error", q.reason());
    assertTrue(q.detail().contains("template_timeout_s (0.5 s)"), q.detail());
    assertTrue(out.get(1) instanceof PreparedRow);
  }
}
