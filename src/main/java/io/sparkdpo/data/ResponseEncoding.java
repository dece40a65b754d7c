package io.sparkdpo.data;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.PrepareSettings;
import io.sparkdpo.io.Storage;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A (prompt, response) text as {@code prepare} turns a TRL row with a text prompt into token ids, so that a model
 * trained on prepared pairs (a reward model) sees new texts exactly as it saw its training data: the prompt as one
 * user turn (or an HH transcript's turns), rendered by the chat template with the generation header, the response
 * rendered as what follows it, each tokenised on its own, EOS appended to the response when {@code addEos}, then
 * {@link Truncation} with the response in both places of the pair (a single text has no partner whose length could
 * cut it).
 *
 * @param tokenizer the tokenizer files (shipped to executors as bytes)
 * @param template the resolved chat template
 * @param truncation prepare's length rules
 * @param addEos {@code prepare.add_eos}
 */
public record ResponseEncoding(TokenizerFiles tokenizer, TemplateSpec template, Truncation truncation, boolean addEos)
    implements Serializable {

  /**
   * The encoding of the {@code prepare} settings {@code s} with this tokenizer (the template resolved as prepare
   * resolves it: {@code auto} is the tokenizer's chat template if it has one).
   */
  public static ResponseEncoding of(PrepareSettings s, TokenizerFiles tokenizer, Storage storage) {
    return of(s.template(), s.addEos(), s.maxLength(), s.maxPromptLength(),
        s.truncationMode() == PrepareSettings.TruncationMode.KEEP_END,
        s.longPrompt() == PrepareSettings.LongPrompt.QUARANTINE, TemplateLimits.of(s), tokenizer, storage);
  }

  /**
   * The encoding a prepared folder was made with, read from its {@code manifest.json}: the {@code prepare} settings
   * it records, resolved with {@code tokenizer}; the tokenizer and the resolved template must have the fingerprints
   * the manifest lists, else the texts would not be tokenised as the folder's pairs were.
   */
  public static ResponseEncoding ofPrepared(String preparedDir, TokenizerFiles tokenizer, Storage storage,
      PrepareSettings defaults) {
    PreparedManifest m = PreparedManifest.read(storage, preparedDir);
    String file = Storage.join(preparedDir, PreparedManifest.FILE);
    JsonNode p = m.config() == null ? null : m.config().path("prepare");
    if (p == null || !p.isObject() || m.template() == null || m.tokenizer() == null) {
      throw new IllegalArgumentException(file + ": field config.prepare (or template, tokenizer) is missing: the "
          + "folder does not record how its text was tokenised");
    }
    if (!tokenizer.fingerprint().equals(m.tokenizer().fingerprint())) {
      throw new IllegalArgumentException(file + ": field tokenizer.fingerprint is " + shortOf(m.tokenizer()
          .fingerprint()) + " (" + m.tokenizer().spec() + "), but the reward model's tokenizer (" + tokenizer.spec()
          + ") is " + shortOf(tokenizer.fingerprint()) + ": the model was not trained on this folder's tokens");
    }
    String keep = p.path("truncation_mode").asText(defaults.truncationMode() == PrepareSettings.TruncationMode.KEEP_END
        ? "keep_end" : "keep_start");
    String longPrompt = p.path("long_prompt").asText(
        defaults.longPrompt() == PrepareSettings.LongPrompt.QUARANTINE ? "quarantine" : "truncate");
    TemplateLimits limits = new TemplateLimits(
        (long) (p.path("template_timeout_s").asDouble(defaults.templateTimeoutS()) * 1e9),
        p.path("template_max_chars").asLong(defaults.templateMaxChars()));
    ResponseEncoding e = of(p.path("template").asText(defaults.template()), p.path("add_eos").asBoolean(
        defaults.addEos()), p.path("max_length").asInt(defaults.maxLength()), p.path("max_prompt_length").asInt(
        defaults.maxPromptLength()), keep.equals("keep_end"), longPrompt.equals("quarantine"), limits, tokenizer,
        storage);
    String fp = e.template().template().fingerprint();
    if (!fp.equals(m.template().fingerprint())) {
      throw new IllegalArgumentException(file + ": field template.fingerprint is " + shortOf(m.template()
          .fingerprint()) + " (" + m.template().name() + "), but its recorded prepare.template '"
          + p.path("template").asText() + "' resolves to " + shortOf(fp) + " today (the template file changed?)");
    }
    return e;
  }

  private static ResponseEncoding of(String template, boolean addEos, int maxLength, int maxPromptLength,
      boolean keepEnd, boolean quarantineLongPrompts, TemplateLimits limits, TokenizerFiles tokenizer,
      Storage storage) {
    TextTokenizer t = TextTokenizer.of(tokenizer);
    if (addEos && !t.hasEos()) {
      throw new IllegalArgumentException("prepare.add_eos is true but tokenizer '" + tokenizer.spec()
          + "' defines no eos_token");
    }
    return new ResponseEncoding(tokenizer, TemplateSpec.resolve(template, t, storage, limits),
        new Truncation(maxLength, maxPromptLength, keepEnd, quarantineLongPrompts), addEos);
  }

  /** What decides the ids: tokenizer, template, EOS and truncation. */
  public String fingerprint() {
    return PrepareJob.sha256("response-encoding-v1", tokenizer.fingerprint(), template.template().fingerprint(),
        "add_eos=" + addEos, truncation.toString());
  }

  /**
   * prompt + response token ids of each row, in row order. A row the template cannot render, or whose prompt
   * {@code prepare} would quarantine as too long, fails naming {@code source} and the row.
   */
  public List<int[]> encode(List<String> prompts, List<String> responses, String source) {
    if (prompts.size() != responses.size()) {
      throw new IllegalArgumentException(prompts.size() + " prompts but " + responses.size() + " responses");
    }
    ChatTemplate chat = template.template();
    List<String> texts = new ArrayList<>(2 * prompts.size());
    for (int i = 0; i < prompts.size(); i++) {
      try {
        List<Turn> turns = Conversations.promptFromText(prompts.get(i));
        texts.add(chat.renderPrompt(turns));
        texts.add(chat.renderResponse(turns, responses.get(i)));
      } catch (BadRow e) {
        throw new IllegalArgumentException(source + ", row " + i + ": the template cannot render it ("
            + e.field() + "): " + e.detail(), e);
      }
    }
    TextTokenizer t = TextTokenizer.of(tokenizer);
    int[][] ids = t.encodeBatch(texts);
    List<int[]> out = new ArrayList<>(prompts.size());
    for (int i = 0; i < prompts.size(); i++) {
      int[] response = ids[2 * i + 1];
      if (addEos) {
        response = Arrays.copyOf(response, response.length + 1);
        response[response.length - 1] = t.eosId();
      }
      try {
        Truncation.Fitted f = truncation.apply(ids[2 * i], response, response);
        int[] row = Arrays.copyOf(f.prompt(), f.prompt().length + f.chosen().length);
        System.arraycopy(f.chosen(), 0, row, f.prompt().length, f.chosen().length);
        out.add(row);
      } catch (BadRow e) {
        throw new IllegalArgumentException(source + ", row " + i + " (field " + e.field() + "): " + e.detail(), e);
      }
    }
    return out;
  }

  private static String shortOf(String fingerprint) {
    return fingerprint == null ? "null" : fingerprint.substring(0, Math.min(16, fingerprint.length()));
  }
}
