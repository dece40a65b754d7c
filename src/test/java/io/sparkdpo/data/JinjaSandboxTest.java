package io.sparkdpo.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** What a chat template can reach (Python's str and dict methods, never a Java method) and the transformers globals. */
class JinjaSandboxTest {
  private static final List<Turn> TURNS = List.of(Turn.user(" Hi\u00a0"), Turn.assistant("Hello"));
  private static final Clock NEW_YEAR = Clock.fixed(Instant.parse("2027-01-02T03:04:05Z"), ZoneOffset.UTC);

  private static String render(String source) throws BadRow {
    return new JinjaChatTemplate("t", source, Map.of("bos_token", "<s>"), NEW_YEAR).render(TURNS, false);
  }

  private static String refusal(String source) {
    BadRow e = assertThrows(BadRow.class, () -> render(source), source);
    assertEquals(QuarantineReason.TEMPLATE_ERROR, e.reason());
    return e.detail();
  }

  @Test
  void javaMethodsAreRefusedOnStringsListsAndDicts() {
    String only = " (only Python's str methods and dict.get/items/keys/values are available)";
    assertEquals("chat template failed: chat templates may not call 'getClass' on a str" + only,
        refusal("{{ 'x'.getClass() }}"));
    assertEquals("chat template failed: chat templates may not call 'repeat' on a str" + only,
        refusal("{{ 'a'.repeat(3) }}"));
    assertEquals("chat template failed: chat templates may not call 'toUpperCase' on a str" + only,
        refusal("{{ 'a'.toUpperCase() }}"));
    assertEquals("chat template failed: chat templates may not call 'clear' on a list" + only,
        refusal("{{ messages.clear() }}{{ messages | length }}"));
    assertEquals("chat template failed: chat templates may not call 'append' on a list" + only,
        refusal("{{ messages.append(1) }}"));
    assertEquals("chat template failed: chat templates may not call 'put' on a dict" + only,
        refusal("{{ messages[0].put('role', 'system') }}"));
    assertEquals("chat template failed: chat templates may not call 'getClass' on a bool" + only,
        refusal("{{ add_generation_prompt.getClass() }}"));
    assertTrue(refusal("{{ bos_token.getBytes() }}").contains("may not call 'getBytes' on a str"));
    assertTrue(refusal("{% for m in messages %}{{ loop.next() }}{% endfor %}")
        .contains("may not call 'next' on a ForLoop"));
    assertTrue(refusal("{{ ____int3rpr3t3r____.getContext() }}").contains("may not call 'getContext'"));
  }

  @Test
  void javaBeanPropertiesAreUndefinedAsInPython() throws BadRow {
    assertEquals("[][][][][2]", render("[{{ 'x'.class }}][{{ messages.size }}][{{ 'abc'.bytes }}]"
        + "[{{ messages[0].content.blank }}][{{ messages | length }}]"));
  }

  @Test
  void pythonStrAndDictMethodsWork() throws BadRow {
    assertEquals("HI|Hi|user|none|role=user;content= Hi\u00a0;|role,content|True|False",
        render("{{ messages[0].content.strip().upper() }}|{{ messages[0].content | trim }}|"
            + "{{ messages[0].get('role') }}|{{ messages[0].get('name', 'none') }}|"
            + "{% for k, v in messages[0].items() %}{{ k }}={{ v }};{% endfor %}|{{ messages[0].keys() | join(',') }}|"
            + "{{ messages[0].content.startswith(' ') }}|{{ 'x' in messages[1].content }}"));
    assertEquals("ab", render("{% for m in messages %}{{ loop.cycle('a', 'b') }}{% endfor %}"));
  }

  @Test
  void constructsJinjavaCannotParseFailInsteadOfRenderingOtherText() {
    assertTrue(refusal("{{ 'ab' * 3 }}").startsWith("chat template failed: "));
    assertTrue(refusal("{% for m in messages[::-1] %}{{ m.role }}{% endfor %}").startsWith("chat template failed: "));
    assertTrue(refusal("{{ messages[0]['content'] ").contains("unterminated {{ expression opened at line 1"));
  }

  @Test
  void strftimeNowReadsTheClockAndKnowsPythonsDirectives() throws BadRow {
    assertEquals("02 Jan 2027|2 January 27|Saturday 03:04:05 AM|002|%",
        render("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%-d %B %y') }}|"
            + "{{ strftime_now('%A %H:%M:%S %p') }}|{{ strftime_now('%j') }}|{{ strftime_now('%%') }}"));
    assertTrue(refusal("{{ strftime_now('%c') }}").contains("strftime_now: directive %c in '%c' is not supported"));
    assertEquals("yes", render("{% if strftime_now is defined and raise_exception is defined %}yes{% endif %}"));
    String today = new JinjaChatTemplate("t", "{{ strftime_now('%Y') }}", Map.of()).renderOrNull();
    assertEquals(Integer.toString(java.time.LocalDate.now().getYear()), today);
  }

  @Test
  void tojsonIsPythonsJsonDumpsWithTransformersDefaults() throws BadRow {
    assertEquals("{\"a\": \"é<&>'\", \"b\": [1, 2.5, null, true, 1e-05]}",
        render("{{ {'a': 'é<&>\\'', 'b': [1, 2.5, none, true, 0.00001]} | tojson }}"));
    assertEquals("{\"a\": \"\\u00e9\\ud83d\\ude00\"}", render("{{ {'a': 'é😀'} | tojson(ensure_ascii=true) }}"));
    assertEquals("{\n  \"a\": 1,\n  \"b\": [\n    \"x\"\n  ],\n  \"c\": {}\n}",
        render("{{ {'b': ['x'], 'a': 1, 'c': {}} | tojson(indent=2, sort_keys=true) }}"));
    assertEquals("{\"role\":\"user\"}", render("{{ {'role': 'user'} | tojson(separators=[',', ':']) }}"));
    assertEquals("[{\"role\": \"user\", \"content\": \" Hi\u00a0\"}]", render("{{ messages[:1] | tojson }}"));
  }
}
