#!/usr/bin/env python3
"""Generate facilityd's man pages and bash completion from the sources we already keep.

    scripts/gen-cli-docs.py --facilityd build/facilityd --sim build/facility-sim \
        --version 0.1.0 --out build/cli-docs

writes, under --out:
    man/facilityd.8.gz        from `facilityd --help` and `facilityd COMMAND --help`, plus
                              docs/man/facilityd.8.md (files, signals, environment, see also)
    man/facility-sim.1.gz     from `facility-sim --help`
    man/facilityd.yaml.5.gz   from docs/config.md (the configuration reference)
    completion/facilityd      bash completion: commands and options from the same --help
    completion/facility-sim

Nothing here is written twice: the programs' --help texts and docs/config.md are the sources;
the markdown is converted to roff by go-md2man (Debian package go-md2man) and compressed the way
Debian wants man pages (gzip -9, no name, no timestamp). The CMake target `cli-docs` runs this
after every build of the two programs; the package installs the results.
"""

import argparse
import datetime
import gzip
import os
import re
import subprocess
import sys

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---- CLI11 --help parsing -------------------------------------------------------------------

SECTION_RE = re.compile(r"^(Options|Positionals|Subcommands):$")
USAGE_RE = re.compile(r"^Usage: (.*)$")
# "  -c,--config TEXT:FILE REQUIRED" or "  --unit INT=1       Modbus unit id"
ITEM_RE = re.compile(r"^  (\S.*?)(?:\s{2,}(\S.*))?$")
DESC_COL = 30  # CLI11 puts descriptions at column 30 (continuation lines too)


class Help:
    """One program's or subcommand's --help, split into its parts."""

    def __init__(self, text):
        self.description = []  # lines before "Usage:"
        self.usage = ""
        self.sections = {}  # name -> [(term, description)]
        self.footer = []  # lines after the last section
        lines = text.rstrip("\n").split("\n")
        i = 0
        while i < len(lines) and not USAGE_RE.match(lines[i]):
            self.description.append(lines[i])
            i += 1
        if i < len(lines):
            self.usage = USAGE_RE.match(lines[i]).group(1)
            i += 1
        section = None
        while i < len(lines):
            line = lines[i]
            m = SECTION_RE.match(line)
            if m:
                section = m.group(1)
                self.sections[section] = []
            elif section and line.startswith("  ") and not line.startswith(" " * DESC_COL):
                im = ITEM_RE.match(line)
                self.sections[section].append([im.group(1).strip(), im.group(2) or ""])
            elif section and line.startswith(" " * DESC_COL) and self.sections[section]:
                item = self.sections[section][-1]
                item[1] = (item[1] + "\n" if item[1] else "") + line[DESC_COL:]
            elif line.strip() == "":
                # A blank line after a section's items: another section, or the footer.
                rest = [x for x in lines[i + 1:] if x.strip()]
                if section and self.sections[section] and not (rest and SECTION_RE.match(rest[0])):
                    self.footer = lines[i + 1:]
                    break
            i += 1
        while self.description and not self.description[-1].strip():
            self.description.pop()
        while self.footer and not self.footer[0].strip():
            self.footer.pop(0)

    def options(self):
        """Every option spelling (-c, --config) with whether it takes a value."""
        out = []
        for term, _ in self.sections.get("Options", []):
            names, _, rest = term.partition(" ")
            takes_value = bool(rest) and not rest.startswith("REQUIRED")
            for n in names.split(","):
                if n.startswith("-"):
                    out.append((n, takes_value, term))
        return out

    def subcommands(self):
        return [t for t, _ in self.sections.get("Subcommands", [])]


def run_help(binary, *args):
    r = subprocess.run([binary, *args, "--help"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        sys.exit(f"gen-cli-docs: {binary} {' '.join(args)} --help exited {r.returncode}: "
                 f"{r.stderr.strip()}")
    return r.stdout


# ---- markdown for go-md2man -------------------------------------------------------------------


def md_escape(s):
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", s)


def literal(lines):
    """A block go-md2man renders verbatim (no reflowing)."""
    body = "\n".join(lines).rstrip()
    return f"```\n{body}\n```\n" if body else ""


def prose_and_literals(lines):
    """CLI11 description/footer text: indented lines (examples) stay verbatim, the rest is
    prose. Returns markdown."""
    out, block, para = [], [], []

    def flush_para():
        if para:
            out.append(md_escape(" ".join(s.strip() for s in para)) + "\n")
            para.clear()

    def flush_block():
        if block:
            out.append(literal(block))
            block.clear()

    for line in lines:
        if line.startswith("  "):
            flush_para()
            block.append(line)
        elif not line.strip():
            flush_para()
            flush_block()
        elif line.rstrip().endswith(":") and len(line) < 60:
            flush_para()
            flush_block()
            out.append(f"**{md_escape(line.strip())}**\n")
        else:
            flush_block()
            para.append(line)
    flush_para()
    flush_block()
    return "\n".join(out)


def option_list(items):
    out = []
    for term, desc in items:
        names, _, rest = term.partition(" ")
        head = ", ".join(f"**{md_escape(n)}**" for n in names.split(","))
        if rest:
            head += " *" + md_escape(rest) + "*"
        text = md_escape(" ".join(desc.split())) if desc else ""
        out.append(f"{head}\n: {text or ' '}\n")
    return "\n".join(out)


def title(name, section, version, date, manual):
    return f'% {name.upper()} {section} "{date}" "facilityd {version}" "{manual}"\n\n'


def program_page(name, section, binary, version, date, manual, summary, extra_md):
    top = Help(run_help(binary))
    parts = [title(name, section, version, date, manual)]
    parts.append(f"# NAME\n{name} - {summary}\n")
    parts.append("# SYNOPSIS\n")
    subs = top.subcommands()
    if subs:
        parts.append("\n\n".join(f"**{name} {s}** [*OPTIONS*]" for s in subs) + "\n")
    else:
        parts.append(f"**{name}** [*OPTIONS*]\n")
    desc = top.description[1:] if top.description and top.description[0].startswith(name) \
        else top.description
    parts.append("# DESCRIPTION\n" + prose_and_literals(desc))
    parts.append("# OPTIONS\n" + option_list(top.sections.get("Options", [])))
    if top.footer:
        parts.append(prose_and_literals(top.footer))
    if subs:
        parts.append("# COMMANDS\n")
        for s in subs:
            h = Help(run_help(binary, s))
            parts.append(f"## {name} {s}\n")
            parts.append(prose_and_literals(h.description))
            parts.append(f"Usage: **{md_escape(h.usage)}**\n")
            if h.sections.get("Positionals"):
                parts.append("Arguments:\n\n" + option_list(h.sections["Positionals"]))
            parts.append("Options:\n\n" + option_list(h.sections.get("Options", [])))
            if h.footer:
                parts.append(prose_and_literals(h.footer))
    if extra_md:
        parts.append(extra_md)
    return "\n".join(parts)


TABLE_ROW_RE = re.compile(r"^\s*\|(.*)\|\s*$")
LINK_RE = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


def split_row(line):
    """Cells of a markdown table row; `\\|` inside a cell is a literal bar."""
    cells, cur, i = [], "", 0
    body = TABLE_ROW_RE.match(line).group(1)
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] == "|":
            cur += "|"
            i += 2
            continue
        if body[i] == "|":
            cells.append(cur.strip())
            cur = ""
        else:
            cur += body[i]
        i += 1
    cells.append(cur.strip())
    return cells


def table_as_list(rows):
    """A markdown table as a definition list: man pages cannot wrap wide table cells, so each
    row becomes its first cell as the term and the other columns as "Header: text"."""
    header = split_row(rows[0])
    out = []
    for row in rows[2:]:  # rows[1] is the |---| line
        cells = [LINK_RE.sub(r"\1", c) for c in split_row(row)]
        term = cells[0] or " "
        meaning, rest = "", []
        for h, c in zip(header[1:], cells[1:]):
            if not c:
                continue
            if h.lower() == "meaning":
                meaning = c
            else:
                rest.append(f"{h}: {c}" if h else c)
        text = meaning + (" (" + "; ".join(rest) + ")" if meaning and rest else "; ".join(rest))
        out.append(f"{term}\n: {text or ' '}\n")
    return out


def config_page(version, date):
    """facilityd.yaml(5) from docs/config.md: its first heading becomes NAME/DESCRIPTION, the
    rest keeps its structure one level up (## -> .SH, ### -> .SS)."""
    with open(os.path.join(SOURCE_DIR, "docs", "config.md"), encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    out = [title("facilityd.yaml", 5, version, date, "File Formats")]
    out.append("# NAME\nfacilityd.yaml - facilityd configuration file and register-map profiles\n")
    out.append("# SYNOPSIS\n/etc/facilityd/facilityd.yaml, /etc/facilityd/profiles/\\*.yaml, "
               "/usr/share/facilityd/profiles/\\*.yaml\n")
    out.append("# DESCRIPTION")
    in_code = False
    first_heading_seen = False
    table = []
    for line in lines + [""]:
        if not in_code and TABLE_ROW_RE.match(line):
            table.append(line)
            continue
        if table:
            out.extend(table_as_list(table))
            table = []
        if line.startswith("```"):
            in_code = not in_code
            out.append(line)
            continue
        if not in_code:
            # Links are read on paper: keep their text (anchors and file names mean nothing).
            line = LINK_RE.sub(r"\1", line)
        if not in_code and line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            if level == 1 and not first_heading_seen:
                first_heading_seen = True
                continue
            out.append("#" * max(1, level - 1) + line[level:])
            continue
        out.append(line)
    out.append("\n# SEE ALSO\n**facilityd**(8), **facility-sim**(1); "
               "/usr/share/doc/facilityd/docs/ (metrics, MQTT, Prometheus, reports)\n")
    return "\n".join(out)


def to_man(markdown, path):
    r = subprocess.run(["go-md2man"], input=markdown, capture_output=True, text=True,
                       check=False)
    if r.returncode != 0:
        sys.exit(f"gen-cli-docs: go-md2man failed for {path}: {r.stderr.strip()}")
    roff = r.stdout
    # go-md2man starts every page with .nh (no hyphenation) and a blank line; lintian and man
    # are happy with both. Write it compressed like dh_compress: -9, no name, no time stamp.
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(roff.encode("utf-8"))


# ---- bash completion ------------------------------------------------------------------------

# How the value of an option is completed (others: free text, nothing offered).
VALUE_KINDS = {
    "--config": "file", "-c": "file", "--output": "file", "-o": "file", "--db": "file",
    "--truth": "file", "--stats": "file", "--fault-file": "file",
    "--profiles-dir": "dir", "--state-dir": "dir",
    "--profile": "profile",
    "--log-level": "words:trace debug info warn error",
    "--format": "words:text markdown csv json html", "-f": "words:text markdown csv json html",
    "--resolution": "words:minute hour",
    "--parity": "words:none even odd",
}


def completion_script(prog, binary):
    top = Help(run_help(binary))
    func = "_" + re.sub(r"[^A-Za-z0-9_]", "_", prog)
    commands = {"": top}
    for s in top.subcommands():
        commands[s] = Help(run_help(binary, s))
    lines = [
        f"# bash completion for {prog}: generated by scripts/gen-cli-docs.py from `{prog} --help`.",
        f"{func}() {{",
        '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '  local cmd="" w',
        '  for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do',
        "    case \"$w\" in",
    ]
    if len(commands) > 1:
        lines.append("      " + "|".join(s for s in commands if s) + ') cmd="$w"; break ;;')
    lines += ["    esac", "  done"]
    # Option values.
    kinds = {}
    for h in commands.values():
        for opt, takes_value, _ in h.options():
            if takes_value:
                kinds.setdefault(VALUE_KINDS.get(opt, "text"), set()).add(opt)
    lines.append('  case "$prev" in')
    for kind, opts in sorted(kinds.items()):
        pattern = "|".join(sorted(opts))
        if kind == "file":
            action = 'COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null'
        elif kind == "dir":
            action = 'COMPREPLY=($(compgen -d -- "$cur")); compopt -o filenames 2>/dev/null'
        elif kind == "profile":
            action = ('COMPREPLY=($(compgen -W "$(ls /etc/facilityd/profiles '
                      '/usr/share/facilityd/profiles 2>/dev/null | sed -n \'s/\\.yaml$//p\')" '
                      '-- "$cur") $(compgen -f -X \'!*.yaml\' -- "$cur"))')
        elif kind.startswith("words:"):
            action = f'COMPREPLY=($(compgen -W "{kind[6:]}" -- "$cur"))'
        else:
            action = "COMPREPLY=()"
        lines.append(f"    {pattern}) {action}; return ;;")
    lines.append("  esac")
    lines.append('  case "$cmd" in')
    for name, h in commands.items():
        words = [o for o, _, _ in h.options()]
        if not name:
            words += h.subcommands()
        options = f'COMPREPLY=($(compgen -W "{" ".join(words)}" -- "$cur"))'
        positionals = [t.split()[0] for t, _ in h.sections.get("Positionals", [])]
        if any(p in ("config", "file") for p in positionals):
            # A file argument (check-config CONFIG): files unless an option is being typed.
            options = (f'if [[ $cur == -* ]]; then {options}; else '
                       'COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; fi')
        lines.append(f'    "{name}") {options} ;;')
    lines += ["  esac", "}", f"complete -F {func} {prog}", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--facilityd", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    # SOURCE_DATE_EPOCH (reproducible builds) or the date of docs/config.md's last change would
    # be nicer; the month of the build is what help2man does.
    date = datetime.datetime.utcfromtimestamp(
        int(os.environ.get("SOURCE_DATE_EPOCH", datetime.datetime.utcnow().timestamp()))
    ).strftime("%B %Y")
    man = os.path.join(args.out, "man")
    comp = os.path.join(args.out, "completion")
    os.makedirs(man, exist_ok=True)
    os.makedirs(comp, exist_ok=True)
    with open(os.path.join(SOURCE_DIR, "docs", "man", "facilityd.8.md"), encoding="utf-8") as f:
        extra = f.read()
    to_man(program_page("facilityd", 8, args.facilityd, args.version, date,
                        "System Administration", "data-center facility monitoring daemon",
                        extra), os.path.join(man, "facilityd.8.gz"))
    with open(os.path.join(SOURCE_DIR, "docs", "man", "facility-sim.1.md"),
              encoding="utf-8") as f:
        extra = f.read()
    to_man(program_page("facility-sim", 1, args.sim, args.version, date, "User Commands",
                        "Modbus simulator of a whole facilityd site", extra),
           os.path.join(man, "facility-sim.1.gz"))
    to_man(config_page(args.version, date), os.path.join(man, "facilityd.yaml.5.gz"))
    for prog, binary in (("facilityd", args.facilityd), ("facility-sim", args.sim)):
        with open(os.path.join(comp, prog), "w", encoding="utf-8") as f:
            f.write(completion_script(prog, binary))


if __name__ == "__main__":
    main()
