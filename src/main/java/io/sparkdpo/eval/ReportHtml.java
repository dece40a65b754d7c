package io.sparkdpo.eval;

import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;

/**
 * Renders {@code report.html}: one self-contained page (inline CSS, charts embedded as data URIs, each linked to its
 * PNG file next to the page) with the headline verdict, the results tables, the charts and the method.
 */
final class ReportHtml {
  /** A chart as the page shows it. */
  record Figure(String file, String title, String caption, byte[] png) {}

  private static final String CSS = """
      :root { --ink:#1f2328; --muted:#59636e; --line:#d8dee4; --soft:#f6f8fa; --good:#1a7f37; --bad:#cf222e;
              --even:#9a6700; }
      * { box-sizing: border-box; }
      body { margin:0; background:#fff; color:var(--ink); font:15px/1.5 -apple-system, "Segoe UI", "DejaVu Sans",
             Helvetica, Arial, sans-serif; }
      main { max-width:1040px; margin:0 auto; padding:32px 24px 48px; }
      h1 { font-size:28px; margin:0 0 4px; }
      h2 { font-size:20px; margin:36px 0 12px; padding-bottom:6px; border-bottom:1px solid var(--line); }
      .sub, .note, figcaption, footer { color:var(--muted); }
      .note { font-size:13px; }
      .verdict { margin:24px 0 8px; padding:16px 20px; border-radius:8px; border:1px solid var(--line);
                 border-left:6px solid var(--even); background:var(--soft); }
      .verdict.beats_sft { border-left-color:var(--good); }
      .verdict.worse_than_sft { border-left-color:var(--bad); }
      .verdict p { margin:4px 0; }
      .verdict .line { font-size:17px; font-weight:600; }
      table { border-collapse:collapse; width:100%; font-size:14px; margin:8px 0; }
      th, td { padding:7px 10px; border-bottom:1px solid var(--line); text-align:right; vertical-align:top; }
      th { background:var(--soft); font-weight:600; }
      th:first-child, td:first-child, th.text, td.text { text-align:left; }
      td.num, .ci { font-variant-numeric:tabular-nums; white-space:nowrap; }
      .ci { color:var(--muted); font-size:12px; }
      .badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; color:#fff;
               background:var(--even); }
      .badge.beats_sft { background:var(--good); } .badge.worse_than_sft { background:var(--bad); }
      figure { margin:16px 0; }
      figure img { width:100%; height:auto; border:1px solid var(--line); border-radius:6px; }
      .scroll { overflow-x:auto; }
      .example td.text { white-space:pre-wrap; max-width:420px; }
      code { background:var(--soft); padding:1px 4px; border-radius:4px; font-size:13px; }
      footer { margin-top:40px; font-size:12px; border-top:1px solid var(--line); padding-top:12px; }
      """;

  private ReportHtml() {}

  static String render(GenerationEval gen, List<TrainingRun> runs, Figure frontier, List<Figure> training,
      String evalData, Map<String, EvalSplitMetrics> evalSplit, Frontier comparison) {
    StringBuilder h = new StringBuilder(64 * 1024);
    String ci = ReportFormat.percent(gen.confidence()) + " CI";
    GenerationEval.Sampling s = gen.sampling();
    h.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        .append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
        .append("<title>spark-dpo evaluation report</title>\n<style>\n").append(CSS).append("</style>\n</head>\n")
        .append("<body>\n<main>\n<header>\n<h1>DPO evaluation report</h1>\n<p class=\"sub\">Ground-truth reward <b>")
        .append(esc(gen.reward())).append("</b> · ").append(s.prompts()).append(" held-out prompts × ")
        .append(s.samplesPerPrompt()).append(" samples each from every policy and from π<sub>SFT</sub> · ")
        .append(ci).append("s</p>\n</header>\n");

    headline(h, gen);
    results(h, gen, ci);
    h.append("<h2>Reward against KL</h2>\n");
    figure(h, frontier);
    if (comparison != null) {
      comparison(h, comparison, ci);
    }
    h.append("<h2>Training</h2>\n");
    if (training.isEmpty()) {
      h.append("<p class=\"note\">The runs' metrics files hold no loss or eval lines to plot.</p>\n");
    } else {
      for (Figure f : training) {
        figure(h, f);
      }
    }
    trainingTable(h, runs);
    evalSplitTable(h, runs, evalData, evalSplit);
    examples(h, gen);
    method(h, gen);
    h.append("<footer>Written by spark-dpo. Numbers in full precision are in <code>metrics.json</code> and ")
        .append("<code>generation.json</code> next to this page.");
    if (gen.reward().startsWith("afinn")) {
      h.append(" The reward uses AFINN-111 by Finn Årup Nielsen (ODC-BY 1.0 / CC-BY 4.0): Nielsen, F. Å. (2011), ")
          .append("“A new ANEW: Evaluation of a word list for sentiment analysis in microblogs”, ")
          .append("CEUR Workshop Proceedings 718: 93–98.");
    }
    h.append("</footer>\n</main>\n</body>\n</html>\n");
    return h.toString();
  }

  private static void headline(StringBuilder h, GenerationEval gen) {
    if (gen.headline().isEmpty()) {
      h.append("<section class=\"verdict\"><p class=\"line\">No policy was evaluated.</p></section>\n");
      return;
    }
    PolicyEval best = gen.headline().get();
    Verdict v = best.verdict();
    h.append("<section class=\"verdict ").append(cls(v)).append("\">\n<p class=\"line\">").append(esc(v.text()))
        .append("</p>\n<p class=\"note\">The improvement is the mean over prompts of (policy − π<sub>SFT</sub>) ")
        .append("mean reward on the same prompts, measured at a sampled KL(π ‖ π<sub>SFT</sub>) of ")
        .append(ReportFormat.num(best.kl().perToken())).append(" nats per token, ")
        .append(ReportFormat.num(best.kl().perSequence().mean())).append(" nats per continuation. ");
    List<PolicyEval> finals = gen.finalCheckpoints();
    if (finals.size() > 1) {
      h.append("Shown: the run with the largest improvement among ").append(finals.size())
          .append(" runs; every run's verdict is below.");
    }
    h.append("</p>\n</section>\n");
    if (finals.size() > 1) {
      h.append("<ul class=\"note\">\n");
      for (PolicyEval p : finals) {
        h.append("<li>").append(esc(p.verdict().text())).append("</li>\n");
      }
      h.append("</ul>\n");
    }
  }

  private static void results(StringBuilder h, GenerationEval gen, String ci) {
    h.append("<h2>Generation results</h2>\n<div class=\"scroll\">\n<table>\n<thead><tr><th>model</th><th>step</th>")
        .append("<th>mean reward</th><th>Δ reward vs SFT</th><th>win rate vs SFT</th>")
        .append("<th>KL / token</th><th>KL / continuation</th><th>verdict</th></tr></thead>\n<tbody>\n");
    MeanWithInterval sft = gen.sftReward();
    h.append("<tr><td>π<sub>SFT</sub></td><td class=\"num\">–</td><td class=\"num\">")
        .append(withCi(sft)).append("</td><td class=\"num\">–</td><td class=\"num\">–</td>")
        .append("<td class=\"num\">0</td><td class=\"num\">0</td><td>reference</td></tr>\n");
    for (PolicyEval p : gen.policies()) {
      WinRate w = p.winRate();
      Verdict v = p.verdict();
      h.append("<tr><td>").append(esc(p.label()));
      if (p.label().startsWith("β=") && !p.label().equals("β=" + p.beta())) { // PPO labels name their kl_coef
        h.append("<br><span class=\"ci\">β ").append(p.beta()).append("</span>");
      }
      h.append("</td><td class=\"num\">").append(p.step()).append("</td><td class=\"num\">")
          .append(withCi(p.reward())).append("</td><td class=\"num\">").append(ReportFormat.signed(p.improvement().mean()))
          .append(" <span class=\"ci\">[").append(ReportFormat.num(p.improvement().low())).append(", ")
          .append(ReportFormat.num(p.improvement().high())).append("]</span></td><td class=\"num\">")
          .append(ReportFormat.percentOf(w.rate())).append(" <span class=\"ci\">[")
          .append(ReportFormat.percentOf(w.low())).append(", ").append(ReportFormat.percentOf(w.high()))
          .append("]</span><br><span class=\"ci\">").append(w.wins()).append(" W / ").append(w.ties())
          .append(" T / ").append(w.losses()).append(" L</span></td><td class=\"num\">")
          .append(ReportFormat.num(p.kl().perToken())).append("</td><td class=\"num\">")
          .append(withCi(p.kl().perSequence())).append("</td><td><span class=\"badge ").append(cls(v)).append("\">")
          .append(esc(shortOutcome(v.outcome()))).append("</span></td></tr>\n");
    }
    h.append("</tbody>\n</table>\n</div>\n<p class=\"note\">Brackets: ").append(ci).append(". Rewards are each prompt's ")
        .append("mean over its samples, averaged over prompts; Δ and win rate compare policy and π<sub>SFT</sub> ")
        .append("prompt by prompt (a win rate counts ties as half).</p>\n");
  }

  /** The RLHF-vs-DPO section: the computed verdict, every frontier point, and each PPO point's comparison. */
  private static void comparison(StringBuilder h, Frontier f, String ci) {
    FrontierVerdict v = f.verdict();
    String cls = switch (v.overall()) {
      case DPO_DOMINATES -> "beats_sft";
      case DPO_DOES_NOT_DOMINATE -> "worse_than_sft";
      default -> "no_clear_difference";
    };
    h.append("<h2>RLHF vs DPO</h2>\n<section class=\"verdict ").append(cls).append("\">\n<p class=\"line\">")
        .append(esc(v.text())).append("</p>\n</section>\n");
    h.append("<div class=\"scroll\">\n<table>\n<thead><tr><th>method</th><th>setting</th><th>step / n</th>")
        .append("<th>mean reward</th><th>Δ reward vs SFT</th><th>KL / continuation</th><th>KL</th></tr></thead>\n")
        .append("<tbody>\n");
    for (FrontierPoint p : f.points()) {
      h.append("<tr><td>").append(esc(p.method())).append("</td><td>").append(esc(p.series())).append("</td>")
          .append("<td class=\"num\">").append(p.method().equals(FrontierPoint.SFT) ? "–" : String.valueOf(p.step()))
          .append(p.last() || p.method().equals(FrontierPoint.SFT) ? "" : " <span class=\"ci\">(earlier)</span>")
          .append("</td><td class=\"num\">").append(withCi(p.reward())).append("</td><td class=\"num\">")
          .append(p.improvement() == null ? "–" : ReportFormat.signed(p.improvement().mean()) + " <span class=\"ci\">["
              + ReportFormat.num(p.improvement().low()) + ", " + ReportFormat.num(p.improvement().high()) + "]</span>")
          .append("</td><td class=\"num\">").append(ReportFormat.num(p.kl()));
      if (!p.klAnalytic() && p.klHigh() > p.klLow()) {
        h.append(" <span class=\"ci\">[").append(ReportFormat.num(p.klLow())).append(", ")
            .append(ReportFormat.num(p.klHigh())).append("]</span>");
      }
      h.append("</td><td>").append(p.method().equals(FrontierPoint.SFT) ? "0 by definition"
          : p.klAnalytic() ? "analytic, not measured" : "sampled").append("</td></tr>\n");
    }
    h.append("</tbody>\n</table>\n</div>\n");
    if (!v.comparisons().isEmpty()) {
      h.append("<h3>Each PPO point against the best DPO point with no more KL</h3>\n<table>\n<thead><tr>")
          .append("<th>PPO point</th><th>its KL</th><th>best DPO point at ≤ KL</th><th>its KL</th>")
          .append("<th>DPO − PPO reward</th><th>interval</th><th>outcome</th></tr></thead>\n<tbody>\n");
      for (FrontierVerdict.Comparison c : v.comparisons()) {
        h.append("<tr><td>").append(esc(c.ppo().name())).append("</td><td class=\"num\">")
            .append(ReportFormat.num(c.ppo().kl())).append("</td>");
        if (c.dpo() == null) {
          h.append("<td>none</td><td class=\"num\">–</td><td class=\"num\">–</td><td>–</td>");
        } else {
          h.append("<td>").append(esc(c.dpo().name())).append("</td><td class=\"num\">")
              .append(ReportFormat.num(c.dpo().kl())).append("</td><td class=\"num\">")
              .append(withCi(c.difference())).append("</td><td>").append(c.paired() ? "paired over prompts" : "Welch")
              .append("</td>");
        }
        h.append("<td>").append(esc(c.outcome().name().toLowerCase(java.util.Locale.ROOT).replace('_', ' ')))
            .append("</td></tr>\n");
      }
      h.append("</tbody>\n</table>\n");
    }
    h.append("<p class=\"note\">Brackets: ").append(ci).append(". Every method is scored by the same ground-truth ")
        .append("reward on the same held-out prompts. DPO and PPO KL is sampled (the sum over each continuation of ")
        .append("log π − log π<sub>SFT</sub> of its tokens); best-of-n's is the analytic log n − (n−1)/n");
    if (f.bestOfN() != null) {
      BestOfNReport b = f.bestOfN();
      h.append(" (").append(esc(b.klEstimate())).append("), with the selector ").append(esc(b.selector()))
          .append(" (").append(esc(b.selectorKind().replace('_', ' '))).append(") choosing among ")
          .append(b.samplesPerPrompt()).append(" samples per prompt from π<sub>SFT</sub>; its Δ is against the ")
          .append("mean of that pool, not against the π<sub>SFT</sub> samples above");
    }
    h.append(".</p>\n");
  }

  private static void trainingTable(StringBuilder h, List<TrainingRun> runs) {
    String[][] columns = {{"loss", "train loss"}, {"eval/loss", "eval loss"},
        {"eval/rewards/accuracies", "eval accuracy"}, {"eval/rewards/margins", "eval margin"},
        {"eval/rewards/chosen", "eval reward chosen"}, {"eval/rewards/rejected", "eval reward rejected"}};
    h.append("<table>\n<thead><tr><th>run</th><th>β</th><th>last step</th>");
    for (String[] c : columns) {
      h.append("<th>").append(c[1]).append("</th>");
    }
    h.append("</tr></thead>\n<tbody>\n");
    for (TrainingRun r : runs) {
      h.append("<tr><td>").append(esc(r.label())).append("</td><td class=\"num\">").append(r.beta())
          .append("</td><td class=\"num\">").append(r.metrics().lastStep()).append("</td>");
      for (String[] c : columns) {
        OptionalDouble v = r.metrics().last(c[0]);
        h.append("<td class=\"num\">").append(v.isPresent() ? ReportFormat.num(v.getAsDouble()) : "–").append("</td>");
      }
      h.append("</tr>\n");
    }
    h.append("</tbody>\n</table>\n<p class=\"note\">Last logged value of each metric (TRL names; eval on the ")
        .append("held-out preference split).</p>\n");
  }

  /** The final policies scored on the eval split by the evaluation itself (not read from the trainer's log). */
  private static void evalSplitTable(StringBuilder h, List<TrainingRun> runs, String evalData,
      Map<String, EvalSplitMetrics> evalSplit) {
    if (evalSplit.isEmpty()) {
      return;
    }
    h.append("<h3>Eval split, measured by this evaluation</h3>\n<table>\n<thead><tr><th>run</th><th>β</th>")
        .append("<th>pairs</th><th>eval loss</th><th>eval accuracy</th><th>eval margin</th>")
        .append("<th>eval reward chosen</th><th>eval reward rejected</th></tr></thead>\n<tbody>\n");
    for (TrainingRun r : runs) {
      EvalSplitMetrics m = evalSplit.get(r.label());
      if (m == null) {
        continue;
      }
      h.append("<tr><td>").append(esc(r.label())).append("</td><td class=\"num\">").append(r.beta())
          .append("</td><td class=\"num\">").append(m.pairs()).append("</td>");
      for (double v : new double[] {m.loss(), m.accuracy(), m.margin(), m.chosenReward(), m.rejectedReward()}) {
        h.append("<td class=\"num\">").append(Double.isNaN(v) ? "–" : ReportFormat.num(v)).append("</td>");
      }
      h.append("</tr>\n");
    }
    h.append("</tbody>\n</table>\n<p class=\"note\">Each run's final policy against the reference log-probs of ")
        .append("<code>").append(esc(String.valueOf(evalData))).append("</code>, scored on Spark executors; ")
        .append("the loss is shown for the sigmoid loss only.</p>\n");
  }

  private static void examples(StringBuilder h, GenerationEval gen) {
    if (gen.examples().isEmpty()) {
      return;
    }
    h.append("<h2>Examples</h2>\n<table class=\"example\">\n<thead><tr><th>prompt</th>")
        .append("<th class=\"text\">π<sub>SFT</sub></th><th>reward</th><th class=\"text\">policy</th><th>reward</th>")
        .append("</tr></thead>\n<tbody>\n");
    for (GenerationEval.Example e : gen.examples()) {
      h.append("<tr><td class=\"text\">").append(esc(e.prompt())).append("</td><td class=\"text\">")
          .append(esc(e.sftContinuation())).append("</td><td class=\"num\">").append(ReportFormat.num(e.sftReward()))
          .append("</td><td class=\"text\"><b>").append(esc(e.policyLabel())).append("</b>: ")
          .append(esc(e.policyContinuation())).append("</td><td class=\"num\">")
          .append(ReportFormat.num(e.policyReward())).append("</td></tr>\n");
    }
    h.append("</tbody>\n</table>\n");
  }

  private static void method(StringBuilder h, GenerationEval gen) {
    GenerationEval.Sampling s = gen.sampling();
    h.append("<h2>Method</h2>\n<ul>\n<li>Sampling: up to ").append(s.maxNewTokens())
        .append(" new tokens, temperature ").append(s.temperature()).append(", top-k ")
        .append(s.topK() == 0 ? "off" : String.valueOf(s.topK())).append(", top-p ")
        .append(s.topP() == 1.0 ? "off" : String.valueOf(s.topP())).append(", seed ").append(s.seed())
        .append(".</li>\n<li>Reward: <code>").append(esc(gen.reward())).append("</code>, an independent scorer ")
        .append("the policy never sees during training.");
    if (gen.reward().startsWith("afinn") || gen.reward().startsWith("lexicon:")) {
      h.append(" It is the mean lexicon valence per word of the continuation (AFINN: −5…+5), dividing by at least ")
          .append(LexiconSentimentReward.DEFAULT_MIN_WORDS).append(" words, so neither longer nor cut-short ")
          .append("continuations raise it.");
    }
    h.append("</li>\n<li>KL: the mean over sampled tokens of log π − log π<sub>SFT</sub> (per token) and its sum over ")
        .append("each continuation (per continuation, the DPO paper's frontier axis).");
    if (!s.unfiltered()) {
      h.append(" <b>Samples were drawn with temperature, top-k or top-p filtering, so these figures estimate the ")
          .append("KL only approximately.</b>");
    }
    h.append("</li>\n<li>Intervals: Student-t intervals over prompts for means and paired differences, Wilson ")
        .append("score intervals for win rates; ").append(ReportFormat.percent(gen.confidence()))
        .append(" confidence.</li>\n</ul>\n");
  }

  private static void figure(StringBuilder h, Figure f) {
    h.append("<figure>\n<a href=\"").append(esc(f.file())).append("\"><img alt=\"").append(esc(f.title()))
        .append("\" width=\"").append(ReportCharts.WIDTH).append("\" height=\"").append(ReportCharts.HEIGHT)
        .append("\" src=\"data:image/png;base64,").append(Base64.getEncoder().encodeToString(f.png()))
        .append("\"></a>\n<figcaption>").append(esc(f.caption())).append(" (<a href=\"").append(esc(f.file()))
        .append("\">").append(esc(f.file())).append("</a>)</figcaption>\n</figure>\n");
  }

  private static String withCi(MeanWithInterval m) {
    return ReportFormat.num(m.mean()) + " <span class=\"ci\">[" + ReportFormat.num(m.low()) + ", "
        + ReportFormat.num(m.high()) + "]</span>";
  }

  private static String cls(Verdict v) {
    return v.outcome().name().toLowerCase(java.util.Locale.ROOT);
  }

  private static String shortOutcome(Verdict.Outcome o) {
    switch (o) {
      case BEATS_SFT:
        return "beats SFT";
      case WORSE_THAN_SFT:
        return "worse than SFT";
      default:
        return "no clear difference";
    }
  }

  static String esc(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '<' -> b.append("&lt;");
        case '>' -> b.append("&gt;");
        case '&' -> b.append("&amp;");
        case '"' -> b.append("&quot;");
        case '\'' -> b.append("&#39;");
        default -> b.append(c);
      }
    }
    return b.toString();
  }
}
