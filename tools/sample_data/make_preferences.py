#!/usr/bin/python3
"""Generates the project's sample preference data from the hand-written blocks in preference_blocks.py.

Usage (from the repository root; output is byte-identical for the same seed):
  /usr/bin/python3 tools/sample_data/make_preferences.py --seed 20251123 --out sample-data/preferences

Writes:
  hh-sample.jsonl                 Anthropic HH-RLHF layout: {"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...",
                                  "rejected": ...}; both share the transcript up to the last "Assistant:".
  trl-sample.jsonl                TRL standard layout with an explicit prompt: {"prompt", "chosen", "rejected"} strings.
  trl-conversational-sample.jsonl TRL conversational layout: lists of {"role", "content"} messages.

The preference is systematic: the chosen reply is helpful, polite, on topic and positive in tone; the rejected
reply is one of five kinds (curt, rude, off topic, refusing, discouraging). Several phrasings of every question,
several answer styles and a share of two-turn conversations give train and eval splits the same patterns without
the same rows. Licence: CC0-1.0 (written for this project).
"""
import argparse
import json
import os
import random

from preference_blocks import NON_ASCII, QUESTIONS, TASKS

TASK_TEMPLATES = [
    "How do I {t}?",
    "How can I {t}?",
    "What's the best way to {t}?",
    "Can you help me {t}?",
    "Do you have any tips to {t}?",
    "I want to {t}. Where should I start?",
    "Could you explain how to {t}?",
    "Please tell me how to {t}.",
    "hey, how do i {t}",
    "I've been trying to {t} for a while. Any advice?",
    "What should I know if I want to {t}?",
    "My friend says it's easy to {t}. How would you do it?",
]
QUESTION_PREFIXES = ["", "", "Quick question: ", "I've always wondered. ", "Can you help me with this? ",
                     "My kid asked me this and I didn't know. "]

OPENERS = ["Happy to help!", "Great question!", "Sure thing!", "Of course!", "I'd be glad to help with that.",
           "Good on you for asking!", "Absolutely.", "That's a lovely goal.", "What a nice thing to work on!", ""]
TASK_LEADS = ["Here are a few tips to {t}:", "To {t}, try this:", "Here's what works well:", "",
              "These steps usually work:"]
CLOSERS = ["I hope this helps!", "Good luck, you've got this!", "Let me know if you'd like more detail.",
           "Enjoy!", "Have fun with it!", "Feel free to ask if anything is unclear.",
           "You're doing great by asking.", "Wishing you the best with it!", "I hope that makes it clearer!"]
FOLLOW_UPS = ["Thanks! Can you give me one more tip?", "That's helpful. Anything else I should know?",
              "Great, what else?", "Thank you! Is there one more thing I should keep in mind?",
              "Nice. Got another suggestion?"]
FOLLOW_UP_OPENERS = ["Of course!", "Sure, here's one more:", "Happy to!", "Yes, gladly!", "Good question!"]
GREETINGS = [("Hi there!", "Hello! How can I help you today?"),
             ("Good morning.", "Good morning! What can I do for you?"),
             ("Hey, are you there?", "I'm here and happy to help. What would you like to know?")]

CURT = ["Figure it out yourself.", "Google it.", "Whatever. Do what you want.", "Why are you asking me?",
        "No idea.", "Not interested.", "Can't be bothered.", "Read a book or something.", "Meh."]
INSULTS = ["Ugh, this is a stupid question.", "Seriously? Everyone knows this.", "What a dumb thing to ask.",
           "You clearly haven't tried very hard.", "Wow, you really don't know this?", "How annoying."]
DISMISSALS = ["Now stop bothering me.", "Don't ask me again.", "Figure out the rest yourself.",
              "I have better things to do.", "Leave me alone.", "That's all you get."]
REFUSALS = ["I won't help with that.", "That's not something I care about.", "I don't know and I don't care.",
            "Ask someone else.", "It's too complicated to explain to you.", "No. Next question.",
            "I'm not going to answer that."]
DISCOURAGING = ["Honestly, don't bother. You will probably fail anyway.",
                "It's hopeless; most people who try this give up.",
                "That sounds like a terrible idea. It will end badly.",
                "Why waste your time? It never works.",
                "You're going to mess it up, so there's no point.",
                "Forget it. This is a miserable waste of effort."]
OFF_TOPIC_FILLER = ["I had a sandwich for lunch today.", "The weather is awful where I am.",
                    "Did you know penguins can't fly?", "My favourite colour is grey.",
                    "Traffic was terrible this morning.", "I think I'll watch a film tonight."]
REJECTED_KINDS = ["curt", "rude", "off_topic", "refusal", "discouraging"]


class Topic:
    def __init__(self, questions, tips, task=None):
        self.questions = questions
        self.tips = tips
        self.task = task


def topics():
    out = [Topic([tpl.format(t=t) for tpl in TASK_TEMPLATES], tips, task=t) for t, tips in TASKS]
    out += [Topic([p + q for p in QUESTION_PREFIXES], tips) for q, tips in QUESTIONS]
    return out


def helpful(rng, topic, tips):
    parts = []
    opener = rng.choice(OPENERS)
    if opener:
        parts.append(opener)
    if topic.task:
        lead = rng.choice(TASK_LEADS)
        if lead:
            parts.append(lead.format(t=topic.task))
    if rng.random() < 0.3 and len(tips) > 1:
        body = "\n".join("%d. %s" % (i + 1, tip) for i, tip in enumerate(tips))
        text = " ".join(parts)
        text = (text + "\n" if text else "") + body + "\n" + rng.choice(CLOSERS)
        return text
    parts.extend(tips)
    parts.append(rng.choice(CLOSERS))
    return " ".join(parts)


def unhelpful(rng, kind, topic, all_topics, tip):
    if kind == "curt":
        return rng.choice(CURT)
    if kind == "rude":
        return " ".join([rng.choice(INSULTS), tip, rng.choice(DISMISSALS)])
    if kind == "off_topic":
        other = rng.choice([t for t in all_topics if t is not topic])
        parts = [rng.choice(OFF_TOPIC_FILLER), rng.choice(other.tips)]
        rng.shuffle(parts)
        return " ".join(parts)
    if kind == "refusal":
        return rng.choice(REFUSALS)
    return rng.choice(DISCOURAGING)


def hh(turns):
    """turns: list of (human, assistant); the last assistant text is the reply being judged."""
    return "".join("\n\nHuman: %s\n\nAssistant: %s" % (h, a) for h, a in turns)


def conversations(rng, all_topics):
    """Yields (history, question, chosen reply, rejected reply, rejected kind); history is [(human, assistant)]."""
    for topic in all_topics:
        per_topic = 5 if topic.task else 4
        questions = rng.sample(topic.questions, per_topic)
        kinds = rng.sample(REJECTED_KINDS, len(REJECTED_KINDS))
        for i, question in enumerate(questions):
            kind = kinds[i % len(kinds)]
            shape = rng.random()
            if i == per_topic - 1:
                # A follow-up turn: the history already holds a helpful answer with two tips.
                first = helpful(rng, topic, topic.tips[:2])
                follow = rng.choice(FOLLOW_UPS)
                chosen = "%s %s %s" % (rng.choice(FOLLOW_UP_OPENERS), topic.tips[2], rng.choice(CLOSERS))
                rejected = unhelpful(rng, kind, topic, all_topics, topic.tips[2])
                yield [(question, first)], follow, chosen, rejected, kind
                continue
            history = []
            if shape < 0.15:
                history = [rng.choice(GREETINGS)]
            n_tips = rng.choice([2, 3, 3])
            tips = rng.sample(topic.tips, n_tips)
            tips.sort(key=topic.tips.index)
            chosen = helpful(rng, topic, tips)
            rejected = unhelpful(rng, kind, topic, all_topics, tips[0])
            yield history, question, chosen, rejected, kind
    for question, good, bad in NON_ASCII:
        yield [], question, good, bad, "non_ascii"
        yield [], question, good, rng.choice(CURT + REFUSALS), "non_ascii"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=20251123)
    ap.add_argument("--out", default="sample-data/preferences")
    ap.add_argument("--trl-rows", type=int, default=50)
    ap.add_argument("--conversational-rows", type=int, default=20)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    all_topics = topics()
    rows = list(conversations(rng, all_topics))
    rng.shuffle(rows)
    seen = set()
    unique = []
    for r in rows:
        key = (tuple(r[0]), r[1], r[2], r[3])
        if key not in seen and r[2] != r[3]:
            seen.add(key)
            unique.append(r)

    os.makedirs(args.out, exist_ok=True)

    def dump(name, records):
        with open(os.path.join(args.out, name), "w", encoding="utf-8", newline="\n") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    dump("hh-sample.jsonl", [{"chosen": hh(h + [(q, c)]), "rejected": hh(h + [(q, r)])}
                             for h, q, c, r, _ in unique])

    # The TRL files draw fresh rows from the same blocks with their own random stream.
    trl_rng = random.Random(args.seed + 1)
    fresh = list(conversations(trl_rng, all_topics))
    trl_rng.shuffle(fresh)
    single = [r for r in fresh if not r[0]][:args.trl_rows]
    dump("trl-sample.jsonl", [{"prompt": q, "chosen": c, "rejected": r} for _, q, c, r, _ in single])
    multi = [r for r in fresh if r[0]][:args.conversational_rows // 2]
    multi += [r for r in fresh if not r[0]][args.trl_rows:args.trl_rows + args.conversational_rows - len(multi)]

    def messages(history, question):
        out = []
        for h, a in history:
            out += [{"role": "user", "content": h}, {"role": "assistant", "content": a}]
        return out + [{"role": "user", "content": question}]

    dump("trl-conversational-sample.jsonl",
         [{"prompt": messages(h, q), "chosen": [{"role": "assistant", "content": c}],
           "rejected": [{"role": "assistant", "content": r}]} for h, q, c, r, _ in multi])

    kinds = {}
    for r in unique:
        kinds[r[4]] = kinds.get(r[4], 0) + 1
    print("hh-sample.jsonl: %d pairs (%d two-turn), rejected kinds %s; trl-sample.jsonl: %d; "
          "trl-conversational-sample.jsonl: %d" % (len(unique), sum(1 for r in unique if r[0]),
                                                   dict(sorted(kinds.items())), len(single), len(multi)))


if __name__ == "__main__":
    main()
