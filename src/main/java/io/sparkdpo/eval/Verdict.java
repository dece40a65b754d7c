package io.sparkdpo.eval;

/**
 * The one-line conclusion of a policy-vs-SFT comparison, decided by where the confidence interval of the paired
 * reward difference lies: wholly above zero (beats), wholly below (worse), or across zero (no clear difference).
 */
public record Verdict(Outcome outcome, String text) {

  public enum Outcome {
    BEATS_SFT("policy beats SFT"),
    NO_CLEAR_DIFFERENCE("no clear difference from SFT"),
    WORSE_THAN_SFT("policy is worse than SFT");

    private final String phrase;

    Outcome(String phrase) {
      this.phrase = phrase;
    }

    public String phrase() {
      return phrase;
    }
  }

  public static Verdict of(PolicyEval p) {
    MeanWithInterval d = p.improvement();
    Outcome outcome = d.excludesZeroAbove() ? Outcome.BEATS_SFT
        : d.excludesZeroBelow() ? Outcome.WORSE_THAN_SFT : Outcome.NO_CLEAR_DIFFERENCE;
    String text = outcome.phrase() + ": mean reward " + ReportFormat.signed(d.mean()) + " ("
        + ReportFormat.percent(d.confidence()) + " CI [" + ReportFormat.num(d.low()) + ", "
        + ReportFormat.num(d.high()) + "]) at KL " + ReportFormat.num(p.kl().perToken()) + " nats/token ("
        + ReportFormat.num(p.kl().perSequence().mean()) + " nats/continuation); " + p.label() + ", step "
        + p.step() + ", win rate " + ReportFormat.percentOf(p.winRate().rate());
    return new Verdict(outcome, text);
  }
}
