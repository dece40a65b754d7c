package io.sparkdpo.eval;

import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Modifier;

/** Builds the {@link RewardFunction} a config names ({@code evaluate.reward}). */
public final class RewardFunctions {
  /** AFINN-111, packaged in the jar from sample-data/lexicon (attribution in sample-data/README.md). */
  public static final String AFINN_RESOURCE = "/io/sparkdpo/builtin/lexicon/afinn-111.csv";
  private static final String SPECS = "afinn, lexicon:PATH or the fully-qualified name of a class implementing "
      + RewardFunction.class.getName() + " with a public no-argument constructor";

  private RewardFunctions() {}

  /** {@link #load(String, Storage)} with local storage (paths on this machine's disk). */
  public static RewardFunction load(String spec) {
    return load(spec, Storage.local());
  }

  /**
   * @param spec {@code afinn} (the built-in AFINN-111 lexicon), {@code lexicon:PATH} (a {@code word,valence} file,
   *     local, hdfs: or s3a:), or a class name; the lexicon rewards are {@link LexiconSentimentReward}s
   */
  public static RewardFunction load(String spec, Storage storage) {
    if (spec == null || spec.isBlank()) {
      throw new IllegalArgumentException("reward spec is empty; expected " + SPECS);
    }
    String s = spec.strip();
    if (s.equals("afinn")) {
      try (InputStream in = RewardFunctions.class.getResourceAsStream(AFINN_RESOURCE)) {
        if (in == null) {
          throw new IllegalStateException("classpath resource " + AFINN_RESOURCE + " is missing from the build");
        }
        return new LexiconSentimentReward("afinn-111", SentimentLexicon.parse(in, "afinn-111.csv"),
            LexiconSentimentReward.DEFAULT_MIN_WORDS);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    if (s.startsWith("lexicon:")) {
      String path = s.substring("lexicon:".length()).strip();
      if (path.isEmpty()) {
        throw new IllegalArgumentException("reward spec '" + spec + "' names no lexicon file");
      }
      try (InputStream in = storage.open(path)) {
        String file = path.substring(path.lastIndexOf('/') + 1);
        return new LexiconSentimentReward("lexicon:" + file, SentimentLexicon.parse(in, path),
            LexiconSentimentReward.DEFAULT_MIN_WORDS);
      } catch (IOException e) {
        throw new UncheckedIOException("reward lexicon " + path + " cannot be read: " + e.getMessage(), e);
      }
    }
    return instantiate(s);
  }

  private static RewardFunction instantiate(String className) {
    ClassLoader loader = Thread.currentThread().getContextClassLoader();
    Class<?> type;
    try {
      type = Class.forName(className, true, loader != null ? loader : RewardFunctions.class.getClassLoader());
    } catch (ClassNotFoundException e) {
      throw new IllegalArgumentException("reward '" + className + "': no such class on the classpath; expected "
          + SPECS, e);
    }
    if (!RewardFunction.class.isAssignableFrom(type)) {
      throw new IllegalArgumentException("reward '" + className + "' does not implement "
          + RewardFunction.class.getName());
    }
    if (type.isInterface() || Modifier.isAbstract(type.getModifiers())) {
      throw new IllegalArgumentException("reward '" + className + "' is abstract; name a concrete class");
    }
    Constructor<?> constructor;
    try {
      constructor = type.getConstructor();
    } catch (NoSuchMethodException e) {
      throw new IllegalArgumentException("reward '" + className + "' has no public no-argument constructor", e);
    }
    try {
      return (RewardFunction) constructor.newInstance();
    } catch (InvocationTargetException e) {
      throw new IllegalArgumentException("reward '" + className + "' failed in its constructor: "
          + e.getCause(), e.getCause());
    } catch (ReflectiveOperationException e) {
      throw new IllegalArgumentException("reward '" + className + "' cannot be instantiated: " + e, e);
    }
  }
}
