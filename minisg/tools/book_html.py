"""The HTML of `minisg book`: executed notebooks, markdown and LaTeX turned into offline pages.

Nothing here loads anything from a network when the pages are read: formulas become MathML at
build time (latex2mathml; a formula it cannot convert is shown as its TeX source), code is
coloured by Pygments, figures are PNG files beside the pages, and the one style sheet is local.
minisg/tools/book.py runs the lessons and decides what goes where; this module only renders.
"""
import base64
import hashlib
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

STYLE_FILE = Path(__file__).with_name("book.css")

# What latex2mathml (3.x) misses in the lessons' formulas, said in TeX it knows.
_TEX_REWRITES = [
    (re.compile(r"\\(?:big|Big|bigg|Bigg)(?=\\[lr](?:floor|ceil))"), ""),  # sized floor brackets: plain ones
    (re.compile(r"\\arg(?![A-Za-z])"), r"\\mathrm{arg}\\,"),
    (re.compile(r"\\text\{([^{}]*)\}"), lambda m: r"\text{" + m[1].replace(r"\_", "_") + "}"),
]
_UNCONVERTED = re.compile(r"\\[A-Za-z]")  # a TeX command left in the MathML: the conversion failed
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_EXIT_WARNING = "To exit: use 'exit', 'quit', or Ctrl-D."  # IPython's note after a SystemExit


# ---------------------------------------------------------------------------- formulas and prose

def formula(tex, display=False):
    """MathML for one TeX formula; its source in <code> when latex2mathml cannot convert it."""
    rewritten = tex
    for pattern, replacement in _TEX_REWRITES:
        rewritten = pattern.sub(replacement, rewritten)
    try:
        mathml = latex_to_mathml(rewritten, display="block" if display else "inline")
    except Exception:  # noqa: BLE001 -- any failure of the converter: the reader gets the TeX source
        mathml = None
    if mathml is None or _UNCONVERTED.search(mathml):
        dollars = "$$" if display else "$"
        return f'<code class="tex">{html.escape(dollars + tex + dollars)}</code>'
    return mathml


def _markdown_parser():
    """CommonMark with tables, and $...$ / $$...$$ formulas rendered by formula(); raw HTML in
    the text is shown as text (a lesson's prose cannot put a script on the page)."""
    parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    dollarmath_plugin(parser, allow_space=False, allow_digits=False, double_inline=True,
                      renderer=lambda tex, options: formula(tex, display=options["display_mode"]))
    return parser


def markdown_to_html(text, demote=0):
    """Markdown with $...$ and $$...$$ formulas -> HTML with MathML; demote=1 makes a '#' an <h2>
    (a document shown inside a page that has its own <h1>)."""
    body = _markdown_parser().render(text)
    if demote:
        body = re.sub(r"<(/?)h([1-6])>", lambda m: f"<{m[1]}h{min(int(m[2]) + demote, 6)}>", body)
    return body


def first_heading(text):
    """The text of the first '# ' heading of a markdown text, or None."""
    match = re.search(r"^#\s+(.+?)\s*$", text, flags=re.M)
    return match[1] if match else None


def code_html(source):
    return highlight(source, PythonLexer(), HtmlFormatter())


def stylesheet():
    """The book's style sheet: book.css and Pygments' colours for code."""
    return STYLE_FILE.read_text(encoding="utf-8") + "\n" + HtmlFormatter(style="default").get_style_defs(".highlight")


# ---------------------------------------------------------------------------- notebook cells

@dataclass
class Figures:
    """The images of one page, as files in its folder (folder/name). An image with the same bytes
    as a file already there (the PNG the lesson itself wrote and showed) points to that file."""
    folder: str                                  # "06_smoothgrad_files"
    existing: dict = field(default_factory=dict)  # sha256 of a file in the folder -> its relative path
    files: dict = field(default_factory=dict)    # relative path -> bytes, to be written

    def add(self, data, suffix):
        digest = hashlib.sha256(data).hexdigest()
        if digest not in self.existing:
            path = f"{self.folder}/figure_{len(self.files) + 1}{suffix}"
            self.files[path] = data
            self.existing[digest] = path
        return self.existing[digest]


def _terminal_text(text):
    """Output as a terminal would have left it: no colour codes, a progress bar's last state."""
    lines = _ANSI.sub("", text).split("\n")
    return "\n".join(line.rsplit("\r", 1)[-1] for line in lines)


def _is_noise(output):
    """Outputs of a lesson's deliberate stop (SystemExit(0)) that mean nothing to a reader."""
    if output.get("output_type") == "error":
        return output.get("ename") == "SystemExit" and output.get("evalue") in ("0", "None", "")
    return output.get("output_type") == "stream" and _EXIT_WARNING in output.get("text", "")


def _rich_output(output, figures, lesson_number):
    data = output.get("data", {})
    for mime, suffix in (("image/png", ".png"), ("image/jpeg", ".jpg")):
        if mime in data:
            path = figures.add(base64.b64decode(data[mime]), suffix)
            alt = f"lesson {lesson_number}, figure {path.rsplit('/', 1)[-1]}"
            return f'<figure><img src="{html.escape(path)}" alt="{html.escape(alt)}"></figure>'
    if "text/plain" in data:  # rich HTML from a kernel could carry scripts: its plain text instead
        return f'<pre class="output">{html.escape(_terminal_text(data["text/plain"]))}</pre>'
    return ""


def _merged_streams(outputs):
    """Consecutive prints to one stream as one output, as Jupyter shows them."""
    merged = []
    for output in outputs:
        last = merged[-1] if merged else {}
        if output.get("output_type") == last.get("output_type") == "stream" and output.get("name") == last.get("name"):
            merged[-1] = {**last, "text": last["text"] + output["text"]}
        else:
            merged.append(output)
    return merged


def outputs_html(outputs, figures, lesson_number):
    """The outputs of one code cell: printed text, figures, errors."""
    parts = []
    for output in _merged_streams([o for o in outputs if not _is_noise(o)]):
        kind = output.get("output_type")
        if kind == "stream":
            css = "output" if output.get("name") == "stdout" else "output stderr"
            parts.append(f'<pre class="{css}">{html.escape(_terminal_text(output["text"]))}</pre>')
        elif kind in ("display_data", "execute_result"):
            parts.append(_rich_output(output, figures, lesson_number))
        elif kind == "error":
            trace = _terminal_text("\n".join(output.get("traceback", [])))
            parts.append(f'<pre class="output error">{html.escape(trace)}</pre>')
    return "".join(parts)


def cells_html(cells, figures, lesson_number):
    """Every cell of a notebook: prose, then code with its outputs."""
    parts = []
    for cell in cells:
        if cell.cell_type == "markdown":
            parts.append(f'<section class="prose">{markdown_to_html(cell.source)}</section>')
        elif cell.cell_type == "code" and cell.source.strip():
            parts.append(f'<div class="cell">{code_html(cell.source)}'
                         f'{outputs_html(cell.get("outputs", []), figures, lesson_number)}</div>')
    return "".join(parts)


# ---------------------------------------------------------------------------- pages

def page(title, body, nav="", root=""):
    """A whole HTML page; `root` is the way back to the book's top folder ("" or "../")."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}style.css">
</head>
<body>
<nav class="top">{nav}</nav>
<main>
{body}
</main>
<nav class="bottom">{nav}</nav>
</body>
</html>
"""


def link(href, text):
    return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'


def nav_bar(previous=None, contents="index.html", following=None):
    """Links to the previous page, the contents and the next page; previous/following: (href, text)."""
    left = link(previous[0], "← " + previous[1]) if previous else "<span></span>"
    right = link(following[0], following[1] + " →") if following else "<span></span>"
    return f'{left}{link(contents, "Contents")}{right}'


def banner(kind, text_html):
    """A box at the top of a lesson page: kind is 'ok', 'stopped' or 'failed'."""
    return f'<div class="banner {kind}">{text_html}</div>'


def rewrite_links(markdown_text, targets):
    """Markdown links [text](target): target in `targets` -> its new address (None: plain text);
    other relative links (files of the repository, not in the book) -> plain text."""
    def replace(match):
        text, target = match[1], match[2]
        if target in targets:
            return f"[{text}]({targets[target]})" if targets[target] else text
        if re.match(r"[a-z]+:|#", target):  # https:, mailto:, an anchor: kept
            return match[0]
        return text
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", replace, markdown_text)


def link_exercise_files(body_html, exercise_pages):
    """<code>lessons/exercises/exNN_x.py</code> in a lesson's prose -> a link to that exercise's page."""
    def replace(match):
        href = exercise_pages.get(match[2])
        return f'<a href="{html.escape(href)}">{match[0]}</a>' if href else match[0]
    return re.sub(r"<code>((?:lessons/)?exercises/)?(ex\d\d_\w+\.py)</code>", replace, body_html)


# ---------------------------------------------------------------------------- the book's pages
# lesson: book.Lesson (path, name, number, title); outcome: book.Outcome (status, message, seconds)

def _status_banner(lesson, outcome, quick):
    if outcome.status == "failed":
        return banner("failed", f"<strong>FAILED</strong> after {outcome.seconds:.1f} s: "
                                f"{html.escape(outcome.message)}. The outputs below stop at the failing cell.")
    if outcome.status == "stopped":
        return banner("stopped", f"<strong>Not run to the end</strong>: {html.escape(outcome.message)} The prose "
                                 "and code are below, without the outputs of the cells after the stop.")
    if not quick:
        return banner("ok", f"Executed in {outcome.seconds:.1f} s.")
    return banner("ok", f"Executed as a quick run in {outcome.seconds:.1f} s (<code>--quick</code>: small numbers); "
                        f"<code>python lessons/{lesson.path.name}</code> gives the figures at the paper's settings.")


def lesson_page(lesson, notebook, outcome, quick, neighbours, exercise_pages, written_by_lesson):
    """(HTML, {relative path: bytes} of the figures still to write) of one lesson's page.

    neighbours: the previous and next Lesson (or None); exercise_pages: {exNN_x.py: address};
    written_by_lesson: {sha256: relative path} of the files the lesson wrote beside its page."""
    previous, following = neighbours
    figures = Figures(f"{lesson.name}_files", dict(written_by_lesson))
    body = link_exercise_files(cells_html(notebook.cells, figures, lesson.number), exercise_pages)
    extras = [link(f"{lesson.name}.ipynb", "the executed notebook (.ipynb)")]
    exercise = next((href for name, href in exercise_pages.items() if name.startswith(f"ex{lesson.number}_")), None)
    if exercise:
        extras.insert(0, link(exercise, f"the graded exercises of lesson {lesson.number}")
                      + f" (<code>minisg check {lesson.number}</code>)")
    footer = '<div class="extras">Also: ' + "; ".join(extras) + "</div>"
    nav = nav_bar(previous and (f"{previous.name}.html", f"Lesson {previous.number}"), "index.html",
                  following and (f"{following.name}.html", f"Lesson {following.number}"))
    return page(lesson.title, _status_banner(lesson, outcome, quick) + body + footer, nav), figures.files


def exercise_files(stubs, readme, built):
    """{relative path: text} of exercises/: an index (their README), a page and a copy of each
    stub. stubs: the exNN_*.py paths; readme: the README's text or None; built: {NN: Lesson}."""
    written, items = {}, []
    for stub in stubs:
        number, source = stub.name[2:4], stub.read_text(encoding="utf-8")
        lesson = built.get(number)
        belongs = f" It belongs to {link(f'../{lesson.name}.html', lesson.title)}." if lesson else ""
        intro = (f"<h1>Exercises of lesson {number}: <code>{stub.name}</code></h1>"
                 f"<p>Copy the stubs with <code>minisg exercises {number}</code>, replace each "
                 f"<code>raise NotImplementedError(...)</code> with your code, and grade it with "
                 f"<code>minisg check {number}</code>. {link(stub.name, 'Download ' + stub.name)}.{belongs}</p>")
        nav = nav_bar(lesson and (f"../{lesson.name}.html", f"Lesson {number}"), "../index.html",
                      ("index.html", "All exercises"))
        written[f"exercises/{stub.name}"] = source
        written[f"exercises/{stub.stem}.html"] = page(f"Exercises {number}", intro + code_html(source), nav, root="../")
        items.append(f"<li>{link(f'{stub.stem}.html', stub.name)}</li>")
    body = (markdown_to_html(rewrite_links(readme or "# Exercises", {}))
            + "<h2>The exercise files</h2><ul>" + "".join(items) + "</ul>")
    written["exercises/index.html"] = page("Exercises", body, nav_bar(None, "../index.html", None), root="../")
    return written


def _table(header, rows):
    cells = "".join(f"<tr><td><code>{html.escape(key)}</code></td><td>{html.escape(value)}</td></tr>"
                    for key, value in rows.items())
    return f"<table><tr><th>{header[0]}</th><th>{header[1]}</th></tr>{cells}</table>"


def credits_page(photo_credits, network_credits):
    """The papers, MNIST, and the photos and networks of the photo lessons with their licences
    (the credit lines minisg.classroom.imagenet gives; not the photo folder's README, which is
    written for whoever set the folder up)."""
    body = ("<h1>Credits</h1><h2>The papers</h2><ul>"
            "<li>D. Smilkov, N. Thorat, B. Kim, F. Viégas, M. Wattenberg: <em>SmoothGrad: removing noise by "
            "adding noise</em>, 2017.</li>"
            "<li>D. Omeiza, S. Speakman, C. Cintas, K. Weldemariam: <em>Smooth Grad-CAM++: An Enhanced Inference "
            "Level Visualization Technique for Deep Convolutional Neural Network Models</em>, 2019.</li></ul>"
            "<h2>Digits</h2><p>The MNIST database of handwritten digits, by Yann LeCun and Corinna Cortes, "
            "under CC BY-SA 3.0 (shipped with minisg, see <code>data/mnist/README.md</code>).</p>"
            "<h2>Photos of lessons 14-16</h2><p>Every figure with a photo carries its credit line:</p>"
            + _table(("photo", "credit"), photo_credits)
            + "<h2>Networks of lessons 14-16</h2>" + _table(("network", "credit"), network_credits))
    return page("Credits", body, nav_bar(None, "index.html", None))


def index_page(readme, lesson_files, lessons, outcomes, quick, built_at, seconds):
    """The lessons table of lessons/README.md, linked to the pages of this build, and how it went.

    readme: its text or None; lesson_files: the names of every lesson file (NN_x.py); lessons:
    those built, with outcomes {name: Outcome}; built_at: a datetime."""
    addresses = {name: None for name in lesson_files}  # not built: its name without a link
    addresses.update({lesson.path.name: f"{lesson.name}.html" for lesson in lessons})
    failed = [lesson.number for lesson in lessons if outcomes[lesson.name].status == "failed"]
    runs = "quick" if quick else "full"
    summary = f"{len(lessons)} lessons, {runs} runs, built {built_at:%Y-%m-%d %H:%M} in {seconds:.0f} s"
    if failed:
        summary += f'; <strong class="failed">failed: {", ".join(failed)}</strong>'
    rows = []
    for lesson in lessons:
        outcome = outcomes[lesson.name]
        rows.append(f'<tr class="{outcome.status}"><td>{link(f"{lesson.name}.html", lesson.title)}</td>'
                    f"<td>{outcome.status}</td><td>{outcome.seconds:.1f} s</td>"
                    f"<td>{html.escape(outcome.message)}</td></tr>")
    body = (f'<p class="summary">minisg, the lessons as a book: {summary}. '
            f'{link("exercises/index.html", "Exercises")} · {link("credits.html", "Credits")}</p>'
            + markdown_to_html(rewrite_links(readme or "# Lessons", addresses))
            + "<h2>This build</h2><table><tr><th>lesson</th><th>status</th><th>time</th><th>note</th></tr>"
            + "".join(rows) + "</table>")
    return page("minisg: the lessons", body)
