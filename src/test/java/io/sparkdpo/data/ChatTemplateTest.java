package io.sparkdpo.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Storage;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ChatTemplateTest {
  private static final List<Turn> CONVERSATION = List.of(new Turn("system", "Be brief."), Turn.user("Hi"),
      Turn.assistant("Hello."), Turn.user("2+2?"));

  /** A ChatML template as Qwen ships it (loop, string concatenation, generation prompt). */
  static final String CHATML_JINJA = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
      + "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
      + "{{ '<|im_start|>assistant\\n' }}{% endif %}";

  @TempDir
  Path dir;

  @Test
  void hhTemplateRendersTranscriptsAndRefusesUnknownRoles() throws BadRow {
    ChatTemplate hh = BuiltinTemplate.HH;
    assertEquals("Be brief.\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: 2+2?\n\nAssistant:", hh.renderPrompt(CONVERSATION));
    assertEquals(" 4", hh.renderResponse(CONVERSATION, "4"));
    BadRow e = assertThrows(BadRow.class, () -> hh.renderPrompt(List.of(new Turn("tool", "x"))));
    assertEquals(QuarantineReason.TEMPLATE_ERROR, e.reason());
    assertEquals("role 'tool' is not supported by the hh template", e.detail());
  }

  @Test
  void chatmlAndLlama3BuiltinsMatchTheirPublishedLayouts() throws BadRow {
    assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        + "Hello.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n",
        BuiltinTemplate.CHATML.renderPrompt(CONVERSATION));
    assertEquals("4<|im_end|>\n", BuiltinTemplate.CHATML.renderResponse(CONVERSATION, "4"));
    assertEquals("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        + "<|start_header_id|>assistant<|end_header_id|>\n\n", BuiltinTemplate.LLAMA3.renderPrompt(List.of(Turn.user(" Hi "))));
    assertEquals("4<|eot_id|>", BuiltinTemplate.LLAMA3.renderResponse(CONVERSATION, "4\n"));
  }

  @Test
  void builtinPlainRendersLikeTheShippedPlainJinjaTemplate() throws Exception {
    // The pipeline's continuation pairs used conf/templates/plain.jinja before `plain` was built in.
    String source = java.nio.file.Files.readString(java.nio.file.Path.of("conf/templates/plain.jinja"));
    ChatTemplate jinja = new JinjaChatTemplate("conf/templates/plain.jinja", source, Map.of());
    List<Turn> prefix = List.of(Turn.user("Call me Ishmael. Some years"));
    assertEquals("Call me Ishmael. Some years", BuiltinTemplate.PLAIN.renderPrompt(prefix));
    assertEquals(jinja.renderPrompt(prefix), BuiltinTemplate.PLAIN.renderPrompt(prefix));
    assertEquals(" ago, never mind", BuiltinTemplate.PLAIN.renderResponse(prefix, " ago, never mind"));
    assertEquals(jinja.renderResponse(prefix, " ago, never mind"),
        BuiltinTemplate.PLAIN.renderResponse(prefix, " ago, never mind"));
    assertEquals(BuiltinTemplate.PLAIN.renderPrompt(CONVERSATION), jinja.renderPrompt(CONVERSATION));
  }

  @Test
  void jinjaChatmlTemplateAgreesWithTheBuiltinChatml() throws BadRow {
    ChatTemplate jinja = new JinjaChatTemplate("tokenizer", CHATML_JINJA, Map.of("eos_token", "<|im_end|>"));
    assertEquals(BuiltinTemplate.CHATML.renderPrompt(CONVERSATION), jinja.renderPrompt(CONVERSATION));
    assertEquals(BuiltinTemplate.CHATML.renderResponse(CONVERSATION, "4"), jinja.renderResponse(CONVERSATION, "4"));
  }

  @Test
  void jinjaTemplatesGetPythonStringMethodsBosTokenAndRaiseException() throws BadRow {
    String zephyrLike = "{{ bos_token }}{% for message in messages %}"
        + "{% if message['role'] == 'tool' %}{{ raise_exception('tools are not supported') }}{% endif %}"
        + "{% if message['content'].startswith('#') %}[heading]{% endif %}"
        + "{{ '<|' + message['role'] + '|>\\n' + message['content'].strip() + eos_token }}{% endfor %}"
        + "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";
    ChatTemplate t = new JinjaChatTemplate("tokenizer", zephyrLike, Map.of("bos_token", "<s>", "eos_token", "</s>"));
    assertEquals("<s><|user|>\n# Hi</s><|assistant|>\n", t.renderPrompt(List.of(Turn.user(" # Hi ")))
        .replace("[heading]", ""));
    assertEquals("<s>[heading]<|user|>\n#x</s><|assistant|>\n", t.renderPrompt(List.of(Turn.user("#x"))));
    assertEquals("Sure.</s>", t.renderResponse(List.of(Turn.user("q")), " Sure. "));
    BadRow e = assertThrows(BadRow.class, () -> t.renderPrompt(List.of(new Turn("tool", "x"))));
    assertEquals(QuarantineReason.TEMPLATE_ERROR, e.reason());
    assertEquals("chat template failed: raise_exception('tools are not supported')", e.detail());
  }

  @Test
  void jinjaTemplatesCannotReadFilesOrReachJavaClasses() {
    ChatTemplate t = new JinjaChatTemplate("evil", "{% include '/etc/passwd' %}", Map.of());
    BadRow e = assertThrows(BadRow.class, () -> t.renderPrompt(List.of(Turn.user("x"))));
    assertEquals(QuarantineReason.TEMPLATE_ERROR, e.reason());
    assertTrue(e.detail().contains("may not include or import"), e.detail());
    ChatTemplate reflect = new JinjaChatTemplate("evil",
        "{{ messages[0].content.getClass().forName('java.lang.Runtime') }}", Map.of());
    BadRow r = assertThrows(BadRow.class, () -> reflect.renderPrompt(List.of(Turn.user("x"))));
    assertEquals("chat template failed: chat templates may not call 'getClass' on a str (only Python's str methods "
        + "and dict.get/items/keys/values are available)", r.detail());
  }

  @Test
  void autoUsesTheTokenizersChatTemplateElseHh() {
    TextTokenizer with = TextTokenizer.load(ByteTokenizer.write(dir.resolve("a"), CHATML_JINJA).toString(), Storage.local());
    TextTokenizer without = TextTokenizer.load(ByteTokenizer.write(dir.resolve("b"), null).toString(), Storage.local());
    TemplateSpec a = TemplateSpec.resolve("auto", with, Storage.local());
    assertEquals("tokenizer", a.template().templateName());
    assertEquals(CHATML_JINJA, a.jinja());
    assertEquals("<|endoftext|>", a.specialTokens().get("eos_token"));
    TemplateSpec b = TemplateSpec.resolve("auto", without, Storage.local());
    assertEquals(BuiltinTemplate.HH, b.template());
    assertNotEquals(a.template().fingerprint(), b.template().fingerprint());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TemplateSpec.resolve("tokenizer", without, Storage.local()));
    assertTrue(e.getMessage().contains("has no chat_template"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> TemplateSpec.resolve("vicuna", without, Storage.local()));
  }

  @Test
  void aTemplateThatCannotRenderAnyConversationFailsTheJobNotEveryRow() throws Exception {
    TextTokenizer tok = TextTokenizer.load(ByteTokenizer.write(dir.resolve("t"), null).toString(), Storage.local());
    Path file = dir.resolve("reversed.jinja"); // Jinjava cannot parse a slice with a step: refused, not misread
    java.nio.file.Files.writeString(file, "{% for m in messages[::-1] %}{{ m['content'] }}{% endfor %}");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TemplateSpec.resolve(file.toString(), tok, Storage.local()));
    assertTrue(e.getMessage().startsWith("prepare.template: '" + file + "' cannot render a one-turn conversation: "),
        e.getMessage());
  }
}
