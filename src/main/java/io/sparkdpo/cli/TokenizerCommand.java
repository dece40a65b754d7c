package io.sparkdpo.cli;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.sparkdpo.data.bpe.BpeTrainer;
import io.sparkdpo.data.bpe.BpeVocabulary;
import io.sparkdpo.data.bpe.HuggingFaceTokenizerFiles;
import io.sparkdpo.data.bpe.TokenizerStats;
import io.sparkdpo.data.bpe.TrainingTexts;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Trains a byte-level BPE tokenizer on local text files and writes it in Hugging Face layout, then reloads the
 * written tokenizer.json through DJL to check that every training text round-trips and to report its compression.
 */
@Command(name = "tokenizer", mixinStandardHelpOptions = true,
    description = "Train a byte-level BPE tokenizer (GPT-2 style) and write tokenizer.json + tokenizer_config.json.")
public final class TokenizerCommand implements Callable<Integer> {
  @Option(names = "--input", arity = "1..*", required = true, paramLabel = "PATH",
      description = "Training files or folders: .jsonl/.json give their string values, other files their text.")
  List<Path> inputs;

  @Option(names = "--vocab-size", required = true, paramLabel = "N",
      description = "Vocabulary size including the special tokens and the 256 byte tokens.")
  int vocabSize;

  @Option(names = "--output", required = true, paramLabel = "DIR", description = "Folder for the tokenizer files.")
  Path output;

  @Option(names = "--special", paramLabel = "TOKEN", split = ",",
      description = "Special tokens, in id order (default: ${DEFAULT-VALUE}).")
  List<String> specials = new ArrayList<>(List.of("<|endoftext|>", "<|pad|>"));

  @Option(names = "--bos", paramLabel = "TOKEN", description = "BOS token (default: ${DEFAULT-VALUE}).")
  String bos = "<|endoftext|>";

  @Option(names = "--eos", paramLabel = "TOKEN", description = "EOS token (default: ${DEFAULT-VALUE}).")
  String eos = "<|endoftext|>";

  @Option(names = "--pad", paramLabel = "TOKEN", description = "Padding token (default: ${DEFAULT-VALUE}).")
  String pad = "<|pad|>";

  @Option(names = "--model-max-length", paramLabel = "N", description = "model_max_length (default: ${DEFAULT-VALUE}).")
  int modelMaxLength = 512;

  @Option(names = "--min-frequency", paramLabel = "N",
      description = "Stop merging when the best pair occurs fewer times (default: ${DEFAULT-VALUE}).")
  long minFrequency = 2;

  @Option(names = "--measure", arity = "1..*", paramLabel = "PATH",
      description = "Held-out files or folders to report compression on (not trained on).")
  List<Path> measure = new ArrayList<>();

  @Override
  public Integer call() throws IOException {
    long start = System.nanoTime();
    BpeTrainer trainer = new BpeTrainer(vocabSize, specials, minFrequency);
    List<String> texts = TrainingTexts.readAll(inputs);
    texts.forEach(trainer::add);
    BpeVocabulary vocab = trainer.train();
    HuggingFaceTokenizerFiles.write(vocab,
        new HuggingFaceTokenizerFiles.Roles(bos, eos, pad, modelMaxLength), output);
    double seconds = (System.nanoTime() - start) / 1e9;
    System.out.printf(java.util.Locale.ROOT,
        "trained on %d texts (%d distinct words): vocab %d = %d specials + 256 bytes + %d merges, in %.1f s%n",
        texts.size(), trainer.distinctWords(), vocab.size(), specials.size(), vocab.merges().size(), seconds);
    if (vocab.size() < vocabSize) {
      System.out.printf("note: stopped at %d tokens: no pair occurs %d times or more%n", vocab.size(), minFrequency);
    }
    System.out.println("wrote " + output.resolve(HuggingFaceTokenizerFiles.TOKENIZER_JSON) + " and "
        + output.resolve(HuggingFaceTokenizerFiles.TOKENIZER_CONFIG_JSON));

    try (HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.newInstance(
        output.resolve(HuggingFaceTokenizerFiles.TOKENIZER_JSON), TokenizerStats.DJL_OPTIONS)) {
      TokenizerStats train = TokenizerStats.measure(tokenizer, texts);
      System.out.println("training texts: " + train);
      int failures = train.roundTripFailures().size();
      if (!measure.isEmpty()) {
        TokenizerStats heldOut = TokenizerStats.measure(tokenizer, TrainingTexts.readAll(measure));
        System.out.println("held-out texts: " + heldOut);
        failures += heldOut.roundTripFailures().size();
      }
      if (failures > 0) {
        System.err.println("error: " + failures + " texts do not decode back to themselves");
        return 1;
      }
    }
    return 0;
  }
}
