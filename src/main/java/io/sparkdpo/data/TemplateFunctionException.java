package io.sparkdpo.data;

/**
 * A chat template asked for something this project's Jinja adapters refuse or do not support (a Java method, an
 * unknown strftime directive, a value tojson cannot write); its message becomes the template error as it is.
 */
final class TemplateFunctionException extends RuntimeException {
  TemplateFunctionException(String message) {
    super(message, null, false, false);
  }
}
