#!/usr/bin/python3
"""Oracle for the test report page (tests/test_eval.c).

    check_html.py PAGE.html REPORT_DIR

PAGE is report.html as written, or the DOM a browser made of it (chromium
--dump-dom). Each level's section ("packet-level", "flow-level") must match
REPORT_DIR's report.json / flow_report.json: the scores table's labels (the
listed classes, then the averages) as text, so a class name that was not
escaped shows up as markup instead; recall, precision and f1 to four
decimals; supports; the confusion counts; and its figure must be a PNG file
of the folder. Prints OK, or the first mismatch and exits 1.
"""
import json
import os
import sys
from html.parser import HTMLParser


class Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections, self.section, self.table, self.row, self.cell = {}, None, None, None, None
        self.title, self.in_title, self.tags = "", False, set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.section = self.sections.setdefault(a.get("id"), {"scores": [], "confusion": [], "img": []})
        elif tag == "table" and self.section is not None:
            self.table = a.get("class")
        elif tag == "tr" and self.table in ("scores", "confusion"):
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = ""
        elif tag == "img" and self.section is not None:
            self.section["img"].append(a.get("src"))
        elif tag == "title":
            self.in_title = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell)
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.section[self.table].append(self.row)
            self.row = None
        elif tag == "table":
            self.table = None
        elif tag == "section":
            self.section = None
        elif tag == "title":
            self.in_title = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
        if self.in_title:
            self.title += data


def fail(msg):
    print(msg)
    sys.exit(1)


def check_level(sec, rep, d, name):
    listed = [c for c in rep["classes"] if c["listed"]]
    rows = sec["scores"][1:]
    want = [[c["name"], "%.4f" % c["recall"], "%.4f" % c["precision"], "%.4f" % c["f1"], str(c["support"])]
            for c in listed]
    for label, key in (("Macro Average", "macro_avg"), ("Wtd. Average", "weighted_avg")):
        a = rep[key]
        want.append([label, "%.4f" % a["recall"], "%.4f" % a["precision"], "%.4f" % a["f1"], str(a["support"])])
    if rows != want:
        fail("%s: scores table %s, report.json says %s" % (name, rows, want))
    ids = [c["id"] for c in listed]
    conf = [[c["name"]] + [str(rep["confusion"][c["id"]][p]) for p in ids] for c in listed]
    if sec["confusion"][1:] != conf or sec["confusion"][0][1:] != [c["name"] for c in listed]:
        fail("%s: confusion table %s, expected %s" % (name, sec["confusion"], conf))
    if len(sec["img"]) != 1:
        fail("%s: %d figures" % (name, len(sec["img"])))
    img = os.path.join(d, sec["img"][0])
    if not os.path.isfile(img) or open(img, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
        fail("%s: figure %s is not a PNG of the folder (%s)" % (name, sec["img"][0], os.listdir(d)))


def main():
    page_path, d = sys.argv[1:3]
    p = Page()
    p.feed(open(page_path, encoding="utf-8", errors="strict").read())
    if "script" in p.tags:
        fail("a <script> element in the page")
    found = 0
    for sec_id, rep_name in (("packet-level", "report.json"), ("flow-level", "flow_report.json")):
        rp = os.path.join(d, rep_name)
        if os.path.exists(rp) != (sec_id in p.sections):
            fail("section %s present: %s, %s present: %s" % (sec_id, sec_id in p.sections, rep_name,
                                                                os.path.exists(rp)))
        if sec_id in p.sections:
            rep = json.load(open(rp))
            check_level(p.sections[sec_id], rep, d, sec_id)
            if rep.get("model") and rep["model"] not in p.title:
                fail("title %r does not name the model %r" % (p.title, rep["model"]))
            found += 1
    if not found:
        fail("no level in the page")
    print("OK %d" % found)


main()
