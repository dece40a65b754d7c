#!/usr/bin/python3
"""Writes tiny Hugging Face dataset folders exactly as `datasets` saves them, for prepare's input tests.

pyarrow is not installed here, so the Arrow IPC stream format is written by hand from the Arrow columnar
specification (https://arrow.apache.org/docs/format/Columnar.html, "Serialization and Interprocess
Communication") and its flatbuffers schemas (Schema.fbs, Message.fbs), as pyarrow's RecordBatchStreamWriter
(which `datasets`' ArrowWriter uses) lays it out: encapsulated messages (0xFFFFFFFF, metadata length, Message
flatbuffer padded to 8 bytes, body), a Schema message carrying the `huggingface` features metadata, one or more
RecordBatch messages with 8-byte aligned buffers (no validity buffer when a column has no nulls), then the
end-of-stream marker. It shares no code with the Java reader (io.sparkdpo.data.ArrowStreamRows).

Folders (as datasets 3.x/4.x writes them; file names never renamed):
  saved-dataset/   Dataset.save_to_disk: data-00000-of-00002.arrow (two record batches),
                   data-00001-of-00002.arrow, dataset_info.json, state.json (indent=2, sort_keys) -- TRL
                   conversational rows (prompt/chosen/rejected as lists of {content, role}) with int64, bool and
                   float32 extra columns; row 3 of the first file has a null `rejected`.
  dataset-dict/    DatasetDict.save_to_disk: dataset_dict.json ({"splits": [...]}, one line), train/ and test/,
                   each a saved Dataset -- UltraFeedback-style rows (score_chosen/score_rejected float64, a
                   large_string `source`); train row 2 has identical responses.

Run:  /usr/bin/python3 tools/golden/hf_dataset_folders.py [OUT]
      (default OUT: src/test/resources/io/sparkdpo/data/hf-datasets)
The expected rows are in OUT/expected.json (per folder and file: the rows as JSON objects, nulls kept), which
HuggingFaceDatasetFoldersTest compares the Java reader's rows with.
"""
import json
import os
import shutil
import struct
import sys

# ---------------------------------------------------------------- flatbuffers, laid out front to back
# A table is written as: its vtable, then the table (soffset to the vtable, then the inline fields), then the
# objects its offset fields point to (strings, vectors, sub-tables), so every uoffset points forward.


class Table:
    """fields: list indexed by field id of None or (kind, value); kind in u8/bool/i16/i32/i64/offset."""

    def __init__(self, fields):
        self.fields = fields


class Vector:
    """kind 'tables' (value: list of Table/str), or 'structs' (value: bytes of packed 8-byte aligned structs)."""

    def __init__(self, kind, items, count=None):
        self.kind, self.items, self.count = kind, items, count


SIZES = {"u8": 1, "bool": 1, "i16": 2, "i32": 4, "i64": 8, "offset": 4}
FORMATS = {"u8": "<B", "bool": "<?", "i16": "<h", "i32": "<i", "i64": "<q"}


class Builder:
    def __init__(self):
        self.buf = bytearray()

    def align(self, n):
        while len(self.buf) % n:
            self.buf.append(0)

    def patch(self, at, target):
        struct.pack_into("<I", self.buf, at, target - at)

    def table(self, t):
        self.align(2)
        vt_pos = len(self.buf)
        present = [(i, f) for i, f in enumerate(t.fields) if f is not None]
        # inline layout: soffset, then fields in id order, each aligned (absolute alignment: table start is 8-aligned)
        offsets, layout, pos = {}, [], 4
        for i, (kind, _) in present:
            size = SIZES[kind]
            pos = (pos + size - 1) // size * size
            offsets[i] = pos
            pos += size
        inline = pos
        nfields = len(t.fields)
        self.buf += struct.pack("<HH", 4 + 2 * nfields, inline)
        for i in range(nfields):
            self.buf += struct.pack("<H", offsets.get(i, 0))
        self.align(8)
        t_pos = len(self.buf)
        self.buf += struct.pack("<i", t_pos - vt_pos)
        self.buf += bytes(inline - 4)
        pending = []
        for i, (kind, value) in present:
            at = t_pos + offsets[i]
            if kind == "offset":
                pending.append((at, value))
            else:
                struct.pack_into(FORMATS[kind], self.buf, at, value)
        for at, child in pending:
            self.patch(at, self.obj(child))
        return t_pos

    def obj(self, o):
        if isinstance(o, str):
            self.align(4)
            pos = len(self.buf)
            data = o.encode("utf-8")
            self.buf += struct.pack("<I", len(data)) + data + b"\0"
            return pos
        if isinstance(o, Table):
            return self.table(o)
        if o.kind == "structs":  # count, then the structs 8-aligned
            while (len(self.buf) + 4) % 8:
                self.buf.append(0)
            pos = len(self.buf)
            self.buf += struct.pack("<I", o.count) + o.items
            return pos
        self.align(4)
        pos = len(self.buf)
        self.buf += struct.pack("<I", len(o.items))
        slots = []
        for _ in o.items:
            slots.append(len(self.buf))
            self.buf += bytes(4)
        for at, item in zip(slots, o.items):
            self.patch(at, self.obj(item))
        return pos

    def finish(self, root):
        self.buf += bytes(8)  # root uoffset at 0, padded so the first vtable is 8-aligned
        self.patch(0, self.table(root))
        self.align(8)
        return bytes(self.buf)


# ---------------------------------------------------------------- Arrow schema and messages
TYPE_INT, TYPE_FLOAT, TYPE_UTF8, TYPE_BOOL, TYPE_LIST, TYPE_STRUCT, TYPE_LARGE_UTF8 = 2, 3, 5, 6, 12, 13, 20
HEADER_SCHEMA, HEADER_RECORD_BATCH = 1, 3
V5 = 4


def arrow_type(t):
    """t: 'string' | 'large_string' | 'int64' | 'bool' | 'float32' | 'float64' | ('list', t) | ('struct', [(name, t)])."""
    if t == "string":
        return TYPE_UTF8, Table([])
    if t == "large_string":
        return TYPE_LARGE_UTF8, Table([])
    if t == "int64":
        return TYPE_INT, Table([("i32", 64), ("bool", True)])
    if t == "bool":
        return TYPE_BOOL, Table([])
    if t in ("float32", "float64"):
        return TYPE_FLOAT, Table([("i16", 1 if t == "float32" else 2)])
    if t[0] == "list":
        return TYPE_LIST, Table([])
    return TYPE_STRUCT, Table([])


def children(t):
    if isinstance(t, tuple) and t[0] == "list":
        return [("item", t[1])]
    if isinstance(t, tuple) and t[0] == "struct":
        return t[1]
    return []


def field(name, t):
    type_id, type_table = arrow_type(t)
    kids = [field(n, c) for n, c in children(t)]
    return Table([("offset", name), ("bool", True), ("u8", type_id), ("offset", type_table), None,
                  ("offset", Vector("tables", kids)), None])


def message(header_type, header, body_length):
    return Builder().finish(Table([("i16", V5), ("u8", header_type), ("offset", header), ("i64", body_length)]))


def encapsulate(metadata, body=b""):
    return struct.pack("<Ii", 0xFFFFFFFF, len(metadata)) + metadata + body


def schema_message(columns, hf_features):
    meta = Table([("offset", "huggingface"), ("offset", json.dumps({"info": {"features": hf_features}}))])
    schema = Table([("i16", 0), ("offset", Vector("tables", [field(n, t) for n, t in columns])),
                    ("offset", Vector("tables", [meta]))])
    return encapsulate(message(HEADER_SCHEMA, schema, 0))


def pad8(b):
    return b + bytes((-len(b)) % 8)


def validity(values):
    if all(v is not None for v in values):
        return b""  # as pyarrow: no bitmap when nothing is null
    bits = bytearray((len(values) + 7) // 8)
    for i, v in enumerate(values):
        if v is not None:
            bits[i // 8] |= 1 << (i % 8)
    return bytes(bits)


def column_buffers(t, values, nodes, buffers):
    """Appends the field nodes and buffers of one column, depth first, as the IPC format orders them."""
    nodes.append((len(values), sum(v is None for v in values)))
    buffers.append(validity(values))
    if t in ("string", "large_string"):
        fmt = "<i" if t == "string" else "<q"
        offsets, data = [0], bytearray()
        for v in values:
            data += (v or "").encode("utf-8")
            offsets.append(len(data))
        buffers.append(b"".join(struct.pack(fmt, o) for o in offsets))
        buffers.append(bytes(data))
    elif t in ("int64", "float32", "float64"):
        fmt = {"int64": "<q", "float32": "<f", "float64": "<d"}[t]
        buffers.append(b"".join(struct.pack(fmt, v if v is not None else 0) for v in values))
    elif t == "bool":
        bits = bytearray((len(values) + 7) // 8)
        for i, v in enumerate(values):
            if v:
                bits[i // 8] |= 1 << (i % 8)
        buffers.append(bytes(bits))
    elif t[0] == "list":
        offsets, items = [0], []
        for v in values:
            items += v or []
            offsets.append(len(items))
        buffers.append(b"".join(struct.pack("<i", o) for o in offsets))
        column_buffers(t[1], items, nodes, buffers)
    else:  # struct: children take the struct's rows (a null struct's children are null)
        for name, ct in t[1]:
            column_buffers(ct, [None if v is None else v.get(name) for v in values], nodes, buffers)


def batch_message(columns, rows):
    nodes, buffers = [], []
    for name, t in columns:
        column_buffers(t, [r[name] for r in rows], nodes, buffers)
    body, specs = bytearray(), bytearray()
    for b in buffers:
        specs += struct.pack("<qq", len(body), len(b))
        body += pad8(b)
    node_bytes = b"".join(struct.pack("<qq", n, nulls) for n, nulls in nodes)
    batch = Table([("i64", len(rows)), ("offset", Vector("structs", node_bytes, len(nodes))),
                   ("offset", Vector("structs", bytes(specs), len(buffers)))])
    return encapsulate(message(HEADER_RECORD_BATCH, batch, len(body)), bytes(body))


END_OF_STREAM = struct.pack("<Ii", 0xFFFFFFFF, 0)


def arrow_stream(columns, hf_features, batches):
    return schema_message(columns, hf_features) + b"".join(batch_message(columns, b) for b in batches) + END_OF_STREAM


# ---------------------------------------------------------------- datasets' folder layouts
def value(dtype):
    return {"dtype": dtype, "_type": "Value"}


def save_dataset(folder, columns, hf_features, files, split):
    """files: a list of files, each a list of record batches (lists of rows); as Dataset.save_to_disk."""
    os.makedirs(folder)
    names = [f"data-{i:05d}-of-{len(files):05d}.arrow" for i in range(len(files))]
    for name, batches in zip(names, files):
        with open(os.path.join(folder, name), "wb") as f:
            f.write(arrow_stream(columns, hf_features, batches))
    state = {"_data_files": [{"filename": n} for n in names], "_fingerprint": "0123456789abcdef",
             "_format_columns": None, "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False,
             "_split": split}
    with open(os.path.join(folder, "state.json"), "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2, sort_keys=True)
    info = {"builder_name": None, "citation": "", "config_name": None, "dataset_name": None,
            "dataset_size": None, "description": "", "download_checksums": None, "download_size": None,
            "features": hf_features, "homepage": "", "license": "", "post_processed": None,
            "post_processing_size": None, "size_in_bytes": None, "splits": None, "supervised_keys": None,
            "task_templates": None, "version": None}
    with open(os.path.join(folder, "dataset_info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
    return names


def turn(role, content):
    return {"content": content, "role": role}


MESSAGES = ("list", ("struct", [("content", "string"), ("role", "string")]))
MESSAGES_FEATURE = [{"content": value("string"), "role": value("string")}]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "src/test/resources/io/sparkdpo/data/hf-datasets"
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    expected = {}

    # Dataset.save_to_disk: TRL conversational, two files, the first in two record batches.
    columns = [("prompt", MESSAGES), ("chosen", MESSAGES), ("rejected", MESSAGES), ("id", "int64"),
               ("flag", "bool"), ("weight", "float32")]
    features = {"prompt": MESSAGES_FEATURE, "chosen": MESSAGES_FEATURE, "rejected": MESSAGES_FEATURE,
                "id": value("int64"), "flag": value("bool"), "weight": value("float32")}

    def trl(i, q, good, bad, flag=True):
        return {"prompt": [turn("user", q)], "chosen": [turn("assistant", good)],
                "rejected": None if bad is None else [turn("assistant", bad)], "id": i, "flag": flag,
                "weight": 0.5}

    first = [[trl(1, "Sky colour?", "Blue.", "Loud."), trl(2, "2+2?", "4", "5", flag=False)],
             [trl(3, "Capital of France?", "Paris.", None)]]
    second = [[trl(4, "Opposite of hot?", "Cold.", "Hot."), trl(5, "Say hi in French", "Bonjour \u00e9t\u00e9 \U0001F600", "Hola")]]
    names = save_dataset(os.path.join(out, "saved-dataset"), columns, features, [first, second], "train")
    expected["saved-dataset"] = {names[0]: [r for b in first for r in b], names[1]: [r for b in second for r in b]}

    # DatasetDict.save_to_disk: UltraFeedback-style train and test splits.
    columns = [("prompt", "string"), ("chosen", MESSAGES), ("rejected", MESSAGES), ("score_chosen", "float64"),
               ("score_rejected", "float64"), ("source", "large_string")]
    features = {"prompt": value("string"), "chosen": MESSAGES_FEATURE, "rejected": MESSAGES_FEATURE,
                "score_chosen": value("float64"), "score_rejected": value("float64"),
                "source": value("large_string")}

    def uf(q, good, bad, sc, sr):
        return {"prompt": q, "chosen": [turn("user", q), turn("assistant", good)],
                "rejected": [turn("user", q), turn("assistant", bad)], "score_chosen": sc, "score_rejected": sr,
                "source": "fixture"}

    train = [[uf("Name a fruit", "Apple", "Chair", 9.0, 1.5), uf("Name a colour", "Red", "Red", 5.0, 5.0),
              uf("Name a planet", "Mars", "Moon", 8.25, 2.0)]]
    test = [[uf("Name a river", "Nile", "Alps", 9.0, 1.0), uf("Name a metal", "Iron", "Wood", 7.0, 3.0)]]
    root = os.path.join(out, "dataset-dict")
    os.makedirs(root)
    expected["dataset-dict"] = {}
    for split, rows in (("train", train), ("test", test)):
        names = save_dataset(os.path.join(root, split), columns, features, [rows], split)
        expected["dataset-dict"][split + "/" + names[0]] = [r for b in rows for r in b]
    with open(os.path.join(root, "dataset_dict.json"), "w", encoding="utf-8") as f:
        json.dump({"splits": ["train", "test"]}, f)

    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
