#!/usr/bin/env python3
"""Build the training corpus of kvsieve's second bundled model (issue 13) from Debian packages.

Interpreter: any Python 3.9+ (standard library only), e.g. Debian's /usr/bin/python3.
Needs the Debian packages linux-doc-6.1 (the kernel's Documentation, as Sphinx HTML) and
python3-doc (the Python documentation, as HTML), man-db with groff-base for the man pages, and
the Python standard library sources (/usr/lib/python3.11).

Sources, each document one file:
  kernel-doc   /usr/share/doc/linux-doc-*/html/**.html      main text of each Sphinx page
  python-doc   /usr/share/doc/python3.11/html/**.html        main text of each Sphinx page
  man          /usr/share/man/man{1,5,7,8}/*.gz              rendered by `man -l` (80 columns);
                                                              section 1 sampled (--man1-every)
  python-src   /usr/lib/python3.11/**.py                     as is (site/dist-packages excluded)

Documents are normalised (HTML to text, trailing spaces, runs of blank lines), those shorter than
--min-bytes dropped, exact duplicates (after normalisation) dropped keeping the first by sorted
name. The held-out split is every document whose sha1("source:name") is 0 mod 50; its names are
listed in manifest.json, so the split is fixed by name, not by order.

Writes OUT/train.jsonl and OUT/heldout.jsonl ({"source", "name", "text"} per line, sorted by
source and name) and OUT/manifest.json (bytes and documents per source and split, duplicates,
package versions, the held-out names, the command line).

Usage:
    python3 tools/model2/build_corpus.py --out /work/data/model2
"""

import argparse
import glob
import gzip
import hashlib
import html.parser
import json
import os
import re
import subprocess
import sys


class MainText(html.parser.HTMLParser):
    """Text of a Sphinx page's main body (div role=main / itemprop=articleBody), else <body>."""

    SKIP = {"script", "style", "nav", "head"}
    BLOCK = {"p", "div", "section", "pre", "li", "dt", "dd", "tr", "h1", "h2", "h3", "h4", "h5",
             "h6", "br", "table", "blockquote", "ul", "ol", "dl"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out = []
        self.depth_main = 0  # >0 inside the main div
        self.div_stack = []
        self.skip = 0
        self.saw_main = False
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div":
            is_main = a.get("role") == "main" or a.get("itemprop") == "articleBody"
            self.div_stack.append(is_main)
            if is_main:
                self.depth_main += 1
                self.saw_main = True
        if tag in self.SKIP:
            self.skip += 1
        if tag == "pre":
            self.pre += 1
        if tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag == "div" and self.div_stack:
            if self.div_stack.pop():
                self.depth_main -= 1
        if tag in self.SKIP and self.skip > 0:
            self.skip -= 1
        if tag == "pre" and self.pre > 0:
            self.pre -= 1
        if tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if self.skip:
            return
        self.out.append((self.depth_main > 0, data if self.pre else re.sub(r"[ \t\r\n]+", " ", data)))

    def text(self):
        main_only = self.saw_main
        parts = []
        for x in self.out:
            if x == "\n":
                parts.append("\n")
            elif not main_only or x[0]:
                parts.append(x[1])
        return "".join(parts)


def normalise(text):
    text = text.replace("\r\n", "\n").replace("\u00b6", "")  # Sphinx's pilcrow anchors
    lines = [ln.rstrip() for ln in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


def html_docs(root, source):
    for path in sorted(glob.glob(os.path.join(root, "**", "*.html"), recursive=True)):
        rel = os.path.relpath(path, root)
        if rel.startswith(("_static", "_sources", "genindex", "search", "py-modindex")):
            continue
        p = MainText()
        with open(path, encoding="utf-8", errors="replace") as f:
            p.feed(f.read())
        yield source, rel, p.text()


def man_docs(root, sections, limit, man1_every):
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0", LANG="C.UTF-8")
    n = 0
    for sec in sections:
        for path in sorted(glob.glob(os.path.join(root, f"man{sec}", "*.gz"))):
            if limit and n >= limit:
                return
            name = os.path.basename(path)
            if sec == "1" and int(hashlib.sha1(name.encode()).hexdigest(), 16) % man1_every:
                continue  # section 1 is large (18k pages here): a fixed sample by name
            try:
                r = subprocess.run(["man", "-l", "-E", "UTF-8", path], env=env, capture_output=True,
                                   timeout=20)
            except subprocess.TimeoutExpired:
                continue
            if r.returncode != 0:
                continue
            text = re.sub(r".\x08", "", r.stdout.decode("utf-8", errors="replace"))  # overstrikes
            n += 1
            yield "man", os.path.relpath(path, root), text


def python_sources(root):
    for path in sorted(glob.glob(os.path.join(root, "**", "*.py"), recursive=True)):
        rel = os.path.relpath(path, root)
        if rel.startswith(("site-packages", "dist-packages")):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            yield "python-src", rel, f.read()


def held_out(source, name):
    return int(hashlib.sha1(f"{source}:{name}".encode()).hexdigest(), 16) % 50 == 0


def package_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kernel-doc", default=None, help="default: /usr/share/doc/linux-doc-*/html")
    ap.add_argument("--python-doc", default=None,
                    help="default: /usr/share/doc/python3-doc/html, else python3.11's html")
    ap.add_argument("--man-root", default="/usr/share/man")
    ap.add_argument("--man-sections", default="1,5,7,8")
    ap.add_argument("--man-limit", type=int, default=0, help="0: every page")
    ap.add_argument("--man1-every", type=int, default=6,
                    help="section 1: the pages whose sha1(file name) is 0 mod N")
    ap.add_argument("--python-src", default="/usr/lib/python3.11")
    ap.add_argument("--min-bytes", type=int, default=200)
    a = ap.parse_args()
    kernel = a.kernel_doc or next(iter(sorted(glob.glob("/usr/share/doc/linux-doc-*/html"))), None)
    if not kernel or not os.path.isdir(kernel):
        sys.exit("no kernel documentation: apt-get install linux-doc-6.1 (or pass --kernel-doc)")
    if a.python_doc is None:
        a.python_doc = next((d for d in ("/usr/share/doc/python3-doc/html",
                                         "/usr/share/doc/python3.11/html") if os.path.isdir(d)),
                            "/usr/share/doc/python3-doc/html")
    if not os.path.isdir(a.python_doc):
        sys.exit("no Python documentation: apt-get install python3-doc (or pass --python-doc)")
    os.makedirs(a.out, exist_ok=True)

    gens = [html_docs(kernel, "kernel-doc"), html_docs(a.python_doc, "python-doc"),
            man_docs(a.man_root, a.man_sections.split(","), a.man_limit, a.man1_every),
            python_sources(a.python_src)]
    seen = {}
    stats = {}
    heldout_names = []
    out = {"train": open(os.path.join(a.out, "train.jsonl"), "w", encoding="utf-8"),
           "heldout": open(os.path.join(a.out, "heldout.jsonl"), "w", encoding="utf-8")}
    for gen in gens:
        for source, name, raw in gen:
            text = normalise(raw)
            s = stats.setdefault(source, {"train": [0, 0], "heldout": [0, 0], "duplicates": 0,
                                          "too_short": 0})
            if len(text.encode()) < a.min_bytes:
                s["too_short"] += 1
                continue
            digest = hashlib.sha256(text.encode()).hexdigest()
            if digest in seen:
                s["duplicates"] += 1
                continue
            seen[digest] = f"{source}:{name}"
            split = "heldout" if held_out(source, name) else "train"
            if split == "heldout":
                heldout_names.append(f"{source}:{name}")
            out[split].write(json.dumps({"source": source, "name": name, "text": text},
                                        ensure_ascii=False) + "\n")
            s[split][0] += 1
            s[split][1] += len(text.encode())
    for f in out.values():
        f.close()
    manifest = {
        "command": " ".join(sys.argv),
        "packages": {p: package_version(p) for p in
                     ("linux-doc-6.1", "python3-doc", "python3.11", "man-db", "manpages")},
        "roots": {"kernel-doc": kernel, "python-doc": a.python_doc, "man": a.man_root,
                  "python-src": a.python_src},
        "sources": {src: {"train_documents": s["train"][0], "train_bytes": s["train"][1],
                          "heldout_documents": s["heldout"][0], "heldout_bytes": s["heldout"][1],
                          "duplicates_dropped": s["duplicates"], "too_short_dropped": s["too_short"]}
                    for src, s in stats.items()},
        "heldout_rule": "sha1('source:name') % 50 == 0",
        "heldout": heldout_names,
    }
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    for src, s in manifest["sources"].items():
        print(f"{src:11s} train {s['train_documents']:6d} docs {s['train_bytes'] / 1e6:8.2f} MB  "
              f"held-out {s['heldout_documents']:5d} docs {s['heldout_bytes'] / 1e6:6.2f} MB  "
              f"dup {s['duplicates_dropped']}")


if __name__ == "__main__":
    main()
