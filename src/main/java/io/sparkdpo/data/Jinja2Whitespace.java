package io.sparkdpo.data;

/**
 * Applies Jinja2's lexer-level whitespace rules to a template's text, as transformers configures them
 * ({@code trim_blocks=True, lstrip_blocks=True}, the default {@code keep_trailing_newline=False}), and returns a
 * template with the same output and no whitespace control left for Jinjava to interpret. Jinjava's own
 * trim/lstrip options differ from Jinja2's in corner cases (a tag in the middle of a line is lstripped, {@code +%}}
 * is a syntax error), and a chat template's whitespace is part of the tokens the model was trained on.
 *
 * <p>The rules, in the order Jinja2's lexer applies them:
 * <ol>
 *   <li>{@code \r\n} and {@code \r} become {@code \n}; one final newline of the template is dropped.
 *   <li>{@code {%-}, {@code {{-}, {@code {#-} remove all whitespace before the tag; {@code -%}}, {@code -}}},
 *       {@code -#}} all whitespace after it.
 *   <li>trim_blocks: a block or comment tag ending in plain {@code %}} / {@code #}} eats one newline after it
 *       ({@code +%}} keeps it). Expression tags never do.
 *   <li>lstrip_blocks: spaces and tabs between the start of a line and a block or comment tag are removed, unless
 *       the tag opens with {@code {%+}. A tag preceded by other text on its line keeps them.
 *   <li>Comments render nothing; {@code {% raw %}} content is kept verbatim.
 * </ol>
 * Inside a tag, string literals and bracket nesting are skipped when looking for its end, as Jinja2's lexer does.
 */
final class Jinja2Whitespace {
  private Jinja2Whitespace() {}

  /** @throws IllegalArgumentException for an unterminated tag, comment or raw block */
  static String apply(String template) {
    String src = normaliseNewlines(template);
    StringBuilder out = new StringBuilder(src.length());
    StringBuilder text = new StringBuilder(); // data since the last tag, not yet written
    boolean lineStarting = true; // the last lexer match ended with a newline (or nothing came before)
    int pos = 0;
    while (pos < src.length()) {
      int open = nextTagStart(src, pos);
      if (open < 0) {
        text.append(src, pos, src.length());
        break;
      }
      text.append(src, pos, open);
      char kind = src.charAt(open + 1); // '%', '{' or '#'
      int inner = open + 2;
      char sign = inner < src.length() && (src.charAt(inner) == '-' || src.charAt(inner) == '+') ? src.charAt(inner) : 0;
      if (sign != 0) {
        inner++;
      }
      boolean raw = kind == '%' && isRawBegin(src, inner);
      stripBefore(text, sign, kind != '{', lineStarting);
      out.append(text);
      text.setLength(0);
      if (kind == '#') {
        int end = commentEnd(src, inner, open);
        TagEnd e = tagEnd(src, end, "#}", true);
        pos = e.next;
        lineStarting = e.endsWithNewline;
      } else if (raw) {
        int close = src.indexOf("%}", inner);
        TagEnd begin = tagEnd(src, src.charAt(close - 1) == '-' ? close - 1 : close, "%}", false); // no trim_blocks
        int contentStart = begin.next;
        int[] endRaw = findEndRaw(src, contentStart, open);
        StringBuilder content = new StringBuilder(src.substring(contentStart, endRaw[0]));
        char endSign = (char) endRaw[2];
        stripBefore(content, endSign, true, begin.endsWithNewline);
        TagEnd end = tagEnd(src, endRaw[1], "%}", true);
        out.append("{% raw %}").append(content).append("{% endraw %}");
        pos = end.next;
        lineStarting = end.endsWithNewline;
      } else {
        String close = kind == '%' ? "%}" : "}}";
        int end = expressionEnd(src, inner, close, open);
        out.append('{').append(kind).append(separateClosingBraces(src.substring(inner, end))).append(close.charAt(0))
            .append('}');
        TagEnd e = tagEnd(src, end, close, kind == '%');
        pos = e.next;
        lineStarting = e.endsWithNewline;
      }
    }
    return out.append(text).toString();
  }

  /** Where a tag's end (with its optional sign) starts, and what follows it after the whitespace rules. */
  private record TagEnd(int next, boolean endsWithNewline) {}

  /**
   * At {@code at} stands the tag's closing, possibly signed ({@code -%}}, {@code +%}}); returns the position after
   * it and after whatever whitespace the rules consume with it.
   */
  private static TagEnd tagEnd(String src, int at, String close, boolean trimBlocks) {
    char sign = src.charAt(at);
    if (sign == '-') {
      int p = at + 1 + close.length();
      while (p < src.length() && isPythonSpace(src.charAt(p))) {
        p++;
      }
      return new TagEnd(p, p > at + 1 + close.length() && src.charAt(p - 1) == '\n');
    }
    if (sign == '+' && !close.equals("}}")) {
      return new TagEnd(at + 1 + close.length(), false);
    }
    int p = at + close.length();
    if (trimBlocks && p < src.length() && src.charAt(p) == '\n') {
      return new TagEnd(p + 1, true);
    }
    return new TagEnd(p, false);
  }

  /** The whitespace a tag's opening removes from the text before it ({@code -}, or lstrip_blocks). */
  private static void stripBefore(StringBuilder text, char sign, boolean blockOrComment, boolean lineStarting) {
    if (sign == '-') {
      int e = text.length();
      while (e > 0 && isPythonSpace(text.charAt(e - 1))) {
        e--;
      }
      text.setLength(e);
    } else if (sign != '+' && blockOrComment) {
      int lineStart = text.lastIndexOf("\n") + 1;
      if ((lineStart > 0 || lineStarting) && lineStart < text.length() && onlySpace(text, lineStart)) {
        text.setLength(lineStart);
      }
    }
  }

  private static boolean onlySpace(CharSequence s, int from) {
    for (int i = from; i < s.length(); i++) {
      if (!isPythonSpace(s.charAt(i))) {
        return false;
      }
    }
    return true;
  }

  private static int nextTagStart(String src, int from) {
    for (int i = src.indexOf('{', from); i >= 0 && i + 1 < src.length(); i = src.indexOf('{', i + 1)) {
      char c = src.charAt(i + 1);
      if (c == '%' || c == '{' || c == '#') {
        return i;
      }
    }
    return -1;
  }

  /** {@code {% raw %}}: the tag's content is only the word raw. */
  private static boolean isRawBegin(String src, int inner) {
    int p = skipSpace(src, inner);
    if (!src.startsWith("raw", p)) {
      return false;
    }
    p = skipSpace(src, p + 3);
    return src.startsWith("%}", p) || src.startsWith("-%}", p);
  }

  /** {@code [content end, position of the endraw tag's closing, its opening sign]}. */
  private static int[] findEndRaw(String src, int from, int open) {
    for (int i = src.indexOf("{%", from); i >= 0; i = src.indexOf("{%", i + 1)) {
      int p = i + 2;
      char sign = p < src.length() && (src.charAt(p) == '-' || src.charAt(p) == '+') ? src.charAt(p) : 0;
      p = skipSpace(src, sign != 0 ? p + 1 : p);
      if (src.startsWith("endraw", p)) {
        p = skipSpace(src, p + 6);
        if (src.startsWith("%}", p) || src.startsWith("-%}", p) || src.startsWith("+%}", p)) {
          return new int[] {i, p, sign};
        }
      }
    }
    throw unterminated("{% raw %}", src, open);
  }

  /** The position of the comment's closing (its sign if it has one). */
  private static int commentEnd(String src, int from, int open) {
    int at = src.indexOf("#}", from);
    if (at < 0) {
      throw unterminated("comment", src, open);
    }
    return at > from && (src.charAt(at - 1) == '-' || src.charAt(at - 1) == '+') ? at - 1 : at;
  }

  /**
   * The position of an expression or statement tag's closing (its sign if it has one), skipping string literals
   * and the insides of brackets, where {@code }}} or {@code %}} do not end the tag.
   */
  private static int expressionEnd(String src, int from, String close, int open) {
    StringBuilder brackets = new StringBuilder();
    int p = from;
    while (p < src.length()) {
      char c = src.charAt(p);
      if (brackets.isEmpty()) {
        if (src.startsWith(close, p)) {
          return p > from && (src.charAt(p - 1) == '-' || (src.charAt(p - 1) == '+' && close.equals("%}")))
              && p - 1 >= from ? p - 1 : p;
        }
      }
      if (c == '\'' || c == '"') {
        p = stringEnd(src, p, open);
        continue;
      }
      if (c == '(' || c == '[' || c == '{') {
        brackets.append(c == '(' ? ')' : c == '[' ? ']' : '}');
      } else if ((c == ')' || c == ']' || c == '}') && !brackets.isEmpty()) {
        brackets.setLength(brackets.length() - 1);
      }
      p++;
    }
    throw unterminated(close.equals("%}") ? "{% tag" : "{{ expression", src, open);
  }

  /**
   * {@code } }} for {@code }}} outside string literals: Jinjava ends an expression at the first {@code }}}, even
   * inside a dict literal ({@code {'a': {}} | tojson}), where Jinja2 balances brackets. The space changes nothing else.
   */
  private static String separateClosingBraces(String expr) {
    StringBuilder out = new StringBuilder(expr.length());
    int p = 0;
    while (p < expr.length()) {
      char c = expr.charAt(p);
      if (c == '\'' || c == '"') {
        int e = stringEnd(expr, p, 0);
        out.append(expr, p, e);
        p = e;
        continue;
      }
      out.append(c);
      if (c == '}' && p + 1 < expr.length() && expr.charAt(p + 1) == '}') {
        out.append(' ');
      }
      p++;
    }
    return out.toString();
  }

  private static int stringEnd(String src, int start, int open) {
    char quote = src.charAt(start);
    for (int p = start + 1; p < src.length(); p++) {
      char c = src.charAt(p);
      if (c == '\\') {
        p++;
      } else if (c == quote) {
        return p + 1;
      }
    }
    throw unterminated("string literal", src, open);
  }

  private static int skipSpace(String src, int p) {
    while (p < src.length() && isPythonSpace(src.charAt(p))) {
      p++;
    }
    return p;
  }

  private static IllegalArgumentException unterminated(String what, String src, int open) {
    int line = 1;
    for (int i = 0; i < open; i++) {
      if (src.charAt(i) == '\n') {
        line++;
      }
    }
    return new IllegalArgumentException("chat template: unterminated " + what + " opened at line " + line);
  }

  private static String normaliseNewlines(String s) {
    String n = s.replace("\r\n", "\n").replace('\r', '\n');
    return n.endsWith("\n") ? n.substring(0, n.length() - 1) : n;
  }

  /** Python's {@code str.isspace()} for one char: what {@code \s} and {@code rstrip()} treat as whitespace. */
  static boolean isPythonSpace(char c) {
    return (c >= '\t' && c <= '\r') || (c >= '\u001c' && c <= ' ') || c == '\u0085' || c == '\u2028' || c == '\u2029'
        || Character.getType(c) == Character.SPACE_SEPARATOR;
  }
}
