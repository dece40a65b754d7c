package io.sparkdpo.data;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;

/**
 * transformers' {@code {% generation %}...{% endgeneration %}} block (its AssistantTracker extension): it marks
 * the assistant's tokens for {@code return_assistant_tokens_mask} and otherwise renders its body unchanged, which
 * is all that rendering needs (prepare splits prompt and response by rendering twice).
 */
final class GenerationTag implements Tag {
  @Override
  public String getName() {
    return "generation";
  }

  @Override
  public String getEndTagName() {
    return "endgeneration";
  }

  @Override
  public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
    StringBuilder body = new StringBuilder();
    for (Node child : tagNode.getChildren()) {
      body.append(child.render(interpreter).getValue());
    }
    return body.toString();
  }
}
