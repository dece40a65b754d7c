package io.sparkdpo.notebooks;

import java.awt.image.RenderedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import javax.imageio.ImageIO;

/**
 * The notebook's {@code display} functions, as JJava's kernel puts them in scope with a static import of its
 * notebook statics ({@code BaseNotebookStatics.display}; IJava's {@code Display.display} has the same signatures),
 * rendered the way JJava's default renderer does for the types the notebooks display:
 * <ul>
 *   <li>a {@link RenderedImage}: {@code image/png} (ImageIO's PNG, base64), and {@code text/plain} =
 *       {@code String.valueOf(image)};</li>
 *   <li>a {@link CharSequence}: {@code text/plain} = the text, plus the text under each MIME type asked for
 *       ({@code display(html, "text/html")}).</li>
 * </ul>
 * Any other object is {@code text/plain} only, as JJava renders it. A MIME type JJava would not render for the
 * object fails instead of being dropped.
 *
 * <p>The runner copies this class's file onto the notebook shell's compile classpath (the kernel jar is on a real
 * kernel's) and routes each display into the running cell; at run time the shell's class loader finds the class in
 * the test JVM first, so the shell and the runner share {@link #target}.
 */
public final class KernelDisplay {
  static final String PLAIN = "text/plain";
  static final String PNG = "image/png";
  /** What JJava's {@code Text} renderer writes a character sequence as. */
  static final List<String> TEXT_TYPES = List.of(PLAIN, "text/html", "text/markdown", "text/latex", "text/css",
      "image/svg+xml", "application/javascript", "application/json");

  /** The running cell's display outputs (MIME type to data); null outside a notebook run. */
  private static volatile Consumer<Map<String, String>> target;
  private static int displays;

  private KernelDisplay() {}

  static void to(Consumer<Map<String, String>> cell) {
    target = cell;
  }

  /** Shows {@code o} as its preferred types; returns the display id, as JJava does. */
  public static String display(Object o) {
    return display(o, new String[0]);
  }

  /** Shows {@code o} as text/plain plus the MIME types {@code as}. */
  public static String display(Object o, String... as) {
    Consumer<Map<String, String>> cell = target;
    if (cell == null) {
      throw new IllegalStateException("display() outside a notebook run");
    }
    cell.accept(render(o, List.of(as)));
    return "display-" + (++displays);
  }

  static Map<String, String> render(Object o, List<String> as) {
    Map<String, String> data = new LinkedHashMap<>();
    if (o instanceof RenderedImage image) {
      for (String type : as.isEmpty() ? List.of(PNG) : as) {
        if (!type.equals(PNG) && !type.equals(PLAIN)) {
          throw new IllegalArgumentException("display(image, \"" + type + "\"): this runner renders images as "
              + PNG + " only");
        }
      }
      data.put(PNG, png(image));
    } else if (o instanceof CharSequence text) {
      for (String type : as) {
        if (!TEXT_TYPES.contains(type)) {
          throw new IllegalArgumentException("display(text, \"" + type + "\"): JJava renders text as " + TEXT_TYPES);
        }
        data.put(type, text.toString());
      }
    } else if (!as.isEmpty()) {
      throw new IllegalArgumentException("display(" + (o == null ? "null" : o.getClass().getName()) + ", " + as
          + "): no renderer for these types in this runner");
    }
    data.putIfAbsent(PLAIN, String.valueOf(o));
    return data;
  }

  private static String png(RenderedImage image) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      if (!ImageIO.write(image, "png", out)) {
        throw new IllegalStateException("no PNG writer for " + image);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return new String(Base64.getEncoder().encode(out.toByteArray()), StandardCharsets.US_ASCII);
  }
}
