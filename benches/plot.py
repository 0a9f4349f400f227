#!/usr/bin/env python3
"""Bar chart of `compare`'s ratios (ours / peer, lower is better), one group of bars per scenario.

    cargo run --release -p concur-benches --bin compare > benches/results/compare.tsv
    python3 benches/plot.py [benches/results/compare.tsv] [-o benches/results/compare.png]

With matplotlib it draws a log-scale horizontal bar chart. Without it (no third-party
package at all) it writes the same chart as a plain PNG by hand: zlib-compressed RGB rows and
a built-in 5x7 bitmap font. `--plain` forces that path.

With `--cdf FILE` (what `compare --cdf FILE` wrote) it also draws one latency CDF per
scenario (every contender's single calls; matplotlib needed), as `cdf_<scenario>.png` beside
the bar chart:

    cargo run --release -p concur-benches --bin compare -- --cdf benches/results/latency_cdf.tsv \
        > benches/results/compare.tsv
    python3 benches/plot.py --cdf benches/results/latency_cdf.tsv

Input: `compare`'s stdout. Rows are `scenario<TAB>peer<TAB>ours_ns<TAB>peer_ns<TAB>ratio`;
`# ...` lines describe the run (shown under the title), `budget` lines are counted in the
footer, `skip` lines are listed there.
"""

import argparse
import math
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INPUT = os.path.join(HERE, "results", "compare.tsv")
DEFAULT_OUTPUT = os.path.join(HERE, "results", "compare.png")

# One colour per peer (RGB), cycling for peers not named here.
PALETTE = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]


def parse(text):
    """(notes, rows, budgets, skips) from compare's output."""
    notes, rows, budgets, skips = [], [], [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            notes.append(line.lstrip("# ").rstrip())
            continue
        fields = line.split("\t")
        if fields[0] == "budget" and len(fields) >= 4:
            budgets.append((fields[1], fields[2], fields[3]))
        elif fields[0] == "skip" and len(fields) >= 3:
            skips.append((fields[1], fields[2]))
        elif len(fields) == 5:
            try:
                ours, peer_ns, ratio = float(fields[2]), float(fields[3]), float(fields[4])
            except ValueError:
                continue
            if ratio > 0:
                rows.append((fields[0], fields[1], ours, peer_ns, ratio))
    return notes, rows, budgets, skips


def colours(rows):
    peers = []
    for _, peer, _, _, _ in rows:
        if peer not in peers:
            peers.append(peer)
    return {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(peers)}


def footer(budgets, skips):
    met = sum(1 for _, status, _ in budgets if status == "met")
    missed = [name for name, status, _ in budgets if status == "missed"]
    lines = [f"budgets: {met} met, {len(missed)} missed, {len(budgets) - met - len(missed)} skipped"]
    lines += [f"missed: {name}" for name in missed]
    lines += [f"skipped peer {peer}: {why}" for peer, why in skips]
    return lines


def subtitle(notes):
    keep = [n for n in notes if n.startswith(("machine", "compare", "plan"))]
    return keep


def plot_matplotlib(rows, notes, budgets, skips, output):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    palette = colours(rows)
    labels = [f"{scenario}  vs {peer}" for scenario, peer, _, _, _ in rows]
    head = ["concur vs peers, one compare run: ratio of medians, ours / peer"] + subtitle(notes)
    foot = footer(budgets, skips)
    # Heights in inches: a bar row, the title block, the axis label and the footer.
    row_h, head_h, axis_h, foot_h = 0.2, 0.18 * len(head) + 0.2, 0.55, 0.14 * len(foot) + 0.15
    height = row_h * len(rows) + head_h + axis_h + foot_h
    fig, ax = plt.subplots(figsize=(11, height))
    fig.subplots_adjust(
        left=0.3, right=0.97, top=1 - head_h / height, bottom=(axis_h + foot_h) / height
    )
    y = list(range(len(rows)))[::-1]
    ratios = [r[4] for r in rows]
    bars = ax.barh(y, ratios, color=[tuple(c / 255 for c in palette[r[1]]) for r in rows])
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.grid(axis="x", which="major", color="#dddddd")
    ax.set_axisbelow(True)
    ax.set_xlabel("ours / peer time (log scale; left of 1 = ours faster)", fontsize=9)
    for bar, ratio in zip(bars, ratios):
        ax.text(bar.get_width() * 1.05, bar.get_y() + bar.get_height() / 2, f"{ratio:.3g}",
                va="center", fontsize=7)
    lo, hi = min(ratios + [1.0]), max(ratios + [1.0])
    ax.set_xlim(lo / 2, hi * 3)
    fig.text(0.01, 1 - 0.1 / height, "\n".join(head), fontsize=9, va="top")
    fig.text(0.01, 0.1 / height, "\n".join(foot), fontsize=7.5, va="bottom")
    fig.savefig(output, dpi=110)


# ---- the plain fallback: a hand-written PNG --------------------------------------------------

# 5x7 glyphs, one string of 7 rows of 5 pixels each ('#' set). Letters are upper case only;
# lower case is drawn with them.
FONT = {
    " ": ".....|.....|.....|.....|.....|.....|.....",
    "0": ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.",
    "1": "..#..|.##..|..#..|..#..|..#..|..#..|.###.",
    "2": ".###.|#...#|....#|...#.|..#..|.#...|#####",
    "3": "####.|....#|....#|.###.|....#|....#|####.",
    "4": "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",
    "5": "#####|#....|####.|....#|....#|#...#|.###.",
    "6": ".###.|#....|#....|####.|#...#|#...#|.###.",
    "7": "#####|....#|...#.|..#..|.#...|.#...|.#...",
    "8": ".###.|#...#|#...#|.###.|#...#|#...#|.###.",
    "9": ".###.|#...#|#...#|.####|....#|....#|.###.",
    "A": ".###.|#...#|#...#|#####|#...#|#...#|#...#",
    "B": "####.|#...#|#...#|####.|#...#|#...#|####.",
    "C": ".###.|#...#|#....|#....|#....|#...#|.###.",
    "D": "####.|#...#|#...#|#...#|#...#|#...#|####.",
    "E": "#####|#....|#....|####.|#....|#....|#####",
    "F": "#####|#....|#....|####.|#....|#....|#....",
    "G": ".###.|#...#|#....|#.###|#...#|#...#|.####",
    "H": "#...#|#...#|#...#|#####|#...#|#...#|#...#",
    "I": ".###.|..#..|..#..|..#..|..#..|..#..|.###.",
    "J": "..###|...#.|...#.|...#.|...#.|#..#.|.##..",
    "K": "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#",
    "L": "#....|#....|#....|#....|#....|#....|#####",
    "M": "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#",
    "N": "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#",
    "O": ".###.|#...#|#...#|#...#|#...#|#...#|.###.",
    "P": "####.|#...#|#...#|####.|#....|#....|#....",
    "Q": ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#",
    "R": "####.|#...#|#...#|####.|#.#..|#..#.|#...#",
    "S": ".####|#....|#....|.###.|....#|....#|####.",
    "T": "#####|..#..|..#..|..#..|..#..|..#..|..#..",
    "U": "#...#|#...#|#...#|#...#|#...#|#...#|.###.",
    "V": "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",
    "W": "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.",
    "X": "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#",
    "Y": "#...#|#...#|.#.#.|..#..|..#..|..#..|..#..",
    "Z": "#####|....#|...#.|..#..|.#...|#....|#####",
    ".": ".....|.....|.....|.....|.....|.##..|.##..",
    ",": ".....|.....|.....|.....|.##..|..#..|.#...",
    ":": ".....|.##..|.##..|.....|.##..|.##..|.....",
    ";": ".....|.##..|.##..|.....|.##..|..#..|.#...",
    "/": "....#|....#|...#.|..#..|.#...|#....|#....",
    "_": ".....|.....|.....|.....|.....|.....|#####",
    "-": ".....|.....|.....|#####|.....|.....|.....",
    "+": ".....|..#..|..#..|#####|..#..|..#..|.....",
    "=": ".....|.....|#####|.....|#####|.....|.....",
    "(": "...#.|..#..|.#...|.#...|.#...|..#..|...#.",
    ")": ".#...|..#..|...#.|...#.|...#.|..#..|.#...",
    "[": ".###.|.#...|.#...|.#...|.#...|.#...|.###.",
    "]": ".###.|...#.|...#.|...#.|...#.|...#.|.###.",
    "<": "...#.|..#..|.#...|#....|.#...|..#..|...#.",
    ">": ".#...|..#..|...#.|....#|...#.|..#..|.#...",
    "%": "##..#|##..#|...#.|..#..|.#...|#..##|#..##",
    "'": "..#..|..#..|.#...|.....|.....|.....|.....",
    '"': ".#.#.|.#.#.|.....|.....|.....|.....|.....",
    "*": ".....|#.#.#|.###.|#####|.###.|#.#.#|.....",
    "!": "..#..|..#..|..#..|..#..|..#..|.....|..#..",
    "?": ".###.|#...#|....#|...#.|..#..|.....|..#..",
    "#": ".#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#.",
    "|": "..#..|..#..|..#..|..#..|..#..|..#..|..#..",
    "µ": ".....|#...#|#...#|#...#|##.##|#.#..|#....",
}
UNKNOWN = "#####|#...#|#...#|#...#|#...#|#...#|#####"


class Canvas:
    def __init__(self, width, height, background=(255, 255, 255)):
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x0, y0, x1, y1, colour):
        x0, x1 = max(0, int(x0)), min(self.width, int(x1))
        y0, y1 = max(0, int(y0)), min(self.height, int(y1))
        if x1 <= x0:
            return
        row = bytes(colour) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start:start + len(row)] = row

    def text(self, x, y, text, colour=(0, 0, 0), scale=1):
        """Draws `text` with its top-left corner at (x, y); returns the x after it."""
        for ch in text:
            glyph = FONT.get(ch.upper(), FONT.get(ch, UNKNOWN))
            for gy, line in enumerate(glyph.split("|")):
                for gx, bit in enumerate(line):
                    if bit == "#":
                        self.rect(x + gx * scale, y + gy * scale,
                                  x + (gx + 1) * scale, y + (gy + 1) * scale, colour)
            x += 6 * scale
        return x

    def png(self):
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * self.width * 3:(y + 1) * self.width * 3])
            for y in range(self.height)
        )

        def chunk(kind, data):
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def text_width(text, scale=1):
    return 6 * scale * len(text)


def plot_plain(rows, notes, budgets, skips, output):
    palette = colours(rows)
    labels = [f"{scenario} vs {peer}" for scenario, peer, _, _, _ in rows]
    head = ["concur vs peers, one compare run: ratio ours / peer (log scale, left of 1 = ours faster)"]
    head += subtitle(notes)
    foot = footer(budgets, skips)
    bar_h, gap, margin = 14, 4, 12
    label_w = max([text_width(label) for label in labels] + [100]) + 10
    plot_w = 640
    width = max(margin * 2 + label_w + plot_w + 60,
                max(text_width(line) for line in head + foot) + 2 * margin)
    top = margin + len(head) * 11 + 16
    height = top + len(rows) * (bar_h + gap) + 30 + len(foot) * 11 + margin
    canvas = Canvas(width, height)
    y = margin
    for i, line in enumerate(head):
        canvas.text(margin, y, line, (0, 0, 0) if i == 0 else (80, 80, 80))
        y += 11
    ratios = [r[4] for r in rows] + [1.0]
    lo = 10 ** math.floor(math.log10(min(ratios)))
    hi = 10 ** math.ceil(math.log10(max(ratios)))
    if hi <= lo:
        hi = lo * 10
    x0 = margin + label_w

    def x_of(value):
        return x0 + plot_w * (math.log10(value) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    # Decade grid lines and labels.
    decade = lo
    bottom = top + len(rows) * (bar_h + gap)
    while decade <= hi * 1.0001:
        x = x_of(decade)
        canvas.rect(x, top - 4, x + 1, bottom, (220, 220, 220))
        label = f"{decade:g}"
        canvas.text(x - text_width(label) / 2, bottom + 4, label, (80, 80, 80))
        decade *= 10
    one = x_of(1.0)
    for i, (label, row) in enumerate(zip(labels, rows)):
        y = top + i * (bar_h + gap)
        canvas.text(x0 - 10 - text_width(label), y + 4, label)
        canvas.rect(x0, y, max(x_of(row[4]), x0 + 1), y + bar_h, palette[row[1]])
        canvas.text(x_of(row[4]) + 4, y + 4, f"{row[4]:.3g}", (60, 60, 60))
    canvas.rect(one, top - 6, one + 2, bottom + 2, (0, 0, 0))
    y = bottom + 18
    for line in foot:
        canvas.text(margin, y, line, (60, 60, 60))
        y += 11
    with open(output, "wb") as f:
        f.write(canvas.png())


def parse_cdf(text):
    """{scenario: {contender: [(quantile, ns), ...]}} from compare's --cdf file."""
    curves = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) != 5 or fields[0] != "cdf":
            continue
        try:
            q, ns = float(fields[3]), float(fields[4])
        except ValueError:
            continue
        curves.setdefault(fields[1], {}).setdefault(fields[2], []).append((q, ns))
    return curves


def cdf_file_name(scenario):
    return "cdf_" + "".join(c if c.isalnum() else "_" for c in scenario) + ".png"


def plot_cdfs(curves, notes, directory):
    """One chart per scenario: latency (log x) against the fraction of calls at most that
    slow, on a logit y axis so that p99, p99.9 and the max stand apart. Returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for scenario, contenders in curves.items():
        fig, ax = plt.subplots(figsize=(8, 5))
        for i, (name, points) in enumerate(contenders.items()):
            points = [(q, ns) for q, ns in points if 0 < q < 1 and ns > 0]
            if not points:
                continue
            qs, xs = [p[0] for p in points], [p[1] / 1e3 for p in points]
            colour = tuple(c / 255 for c in PALETTE[i % len(PALETTE)])
            style = "-" if name.startswith("ours") else "--"
            ax.plot(xs, qs, style, color=colour, label=name, linewidth=1.6, marker=".", markersize=3)
        ax.set_xscale("log")
        ax.set_yscale("logit")
        ax.set_xlabel("latency of one call, µs (log scale)")
        ax.set_ylabel("fraction of calls at most this slow")
        ax.grid(which="major", color="#dddddd")
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title(f"{scenario}: per-call latency CDF, one compare run", fontsize=10)
        machine = [n for n in notes if n.startswith(("machine", "compare"))]
        if machine:
            fig.text(0.01, 0.005, "\n".join(machine), fontsize=6.5, va="bottom")
        fig.subplots_adjust(bottom=0.17)
        output = os.path.join(directory, cdf_file_name(scenario))
        fig.savefig(output, dpi=100)
        plt.close(fig)
        written.append(output)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", default=DEFAULT_INPUT, help="compare's output (TSV)")
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT, help="the PNG to write")
    parser.add_argument("--plain", action="store_true", help="do not use matplotlib")
    parser.add_argument("--cdf", help="compare's --cdf file: draw one latency CDF per scenario")
    args = parser.parse_args()
    with open(args.input, encoding="utf-8") as f:
        notes, rows, budgets, skips = parse(f.read())
    if not rows:
        sys.exit(f"{args.input}: no ratio rows (is it compare's stdout?)")
    how = "plain"
    if not args.plain:
        try:
            plot_matplotlib(rows, notes, budgets, skips, args.output)
            how = "matplotlib"
        except ImportError:
            print("plot.py: matplotlib is not installed; writing a plain PNG", file=sys.stderr)
    if how == "plain":
        plot_plain(rows, notes, budgets, skips, args.output)
    print(f"plot.py: {len(rows)} ratios -> {args.output} ({how})")
    if args.cdf:
        with open(args.cdf, encoding="utf-8") as f:
            curves = parse_cdf(f.read())
        directory = os.path.dirname(os.path.abspath(args.output))
        written = plot_cdfs(curves, notes, directory)
        print(f"plot.py: {len(written)} latency CDFs -> {directory}")


if __name__ == "__main__":
    main()
