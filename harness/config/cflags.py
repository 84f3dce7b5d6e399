"""Allow-list for user compiler flags (``[build] extra_cflags`` of a board file).

A flag list is handed to ``arm-none-eabi-gcc``, and the gcc driver can be told to run other
programs (``-wrapper``, ``-B``, ``-specs=``, ``@file``, ``-fplugin``, ``-Wl,--plugin``). So only
what changes the generated code is accepted: optimisation levels, ``-f``/``-m`` code-generation
flags, ``-D``/``-U`` defines, warning switches, debug levels and the C standard. Anything else is
refused with the reason, never passed through."""

from __future__ import annotations

import re

ALLOWED_HELP = ("-O0/1/2/3/s/z/g/fast, -f<flag>[=value], -fno-<flag>, -m<option>[=value], -D<NAME>[=value], "
                "-U<NAME>, -W<warning>, -g[0-3], -std=c99/c11/c17/gnu99/gnu11/gnu17")

_OPT = re.compile(r"^-O([0-3sgz]|fast)?$")
_DEFINE = re.compile(r"^-D[A-Za-z_][A-Za-z0-9_]*(=[\x21-\x7e]*)?$")
_UNDEF = re.compile(r"^-U[A-Za-z_][A-Za-z0-9_]*$")
_F = re.compile(r"^-f(no-)?([a-z0-9][a-z0-9-]*)(=[A-Za-z0-9_.,+-]+)?$")
_M = re.compile(r"^-m(no-)?([a-z0-9][a-z0-9-]*)(=[A-Za-z0-9_.+-]+)?$")
_W = re.compile(r"^-W(no-)?([a-z0-9][a-z0-9+-]*)(=[A-Za-z0-9_.+-]+)?$")
_G = re.compile(r"^-g[0-3]?$")
_STD = re.compile(r"^-std=(c|gnu)(99|11|17|18|2x|23)$")
# -f flags that load code into the compiler or write files outside the build's own outputs
_F_DENIED = ("plugin", "dump", "profile", "auto-profile", "opt-info", "save-optimization-record",
             "callgraph-info", "use-ld", "debug-prefix-map", "file-prefix-map", "macro-prefix-map", "lto-")
MAX_FLAGS = 64
MAX_FLAG_LEN = 200


def flag_problem(flag: str) -> str | None:
    """Why ``flag`` is refused, or None when it is allowed."""
    if not isinstance(flag, str) or not flag:
        return "an empty flag"
    if len(flag) > MAX_FLAG_LEN:
        return f"longer than {MAX_FLAG_LEN} characters"
    if flag.startswith("@"):
        return "a response file (@file) would read further options from a file"
    if _OPT.match(flag) or _DEFINE.match(flag) or _UNDEF.match(flag) or _G.match(flag) or _STD.match(flag):
        return None
    m = _F.match(flag)
    if m:
        name = m.group(2)
        if any(name.startswith(d) for d in _F_DENIED):
            return f"-f{name} loads code into the compiler or writes files outside the build"
        return None
    if _M.match(flag):
        return None
    if _W.match(flag) and not flag.startswith(("-Wl", "-Wa", "-Wp")):
        return None
    if flag.startswith(("-Wl,", "-Wa,", "-Wp,", "-Xlinker", "-Xassembler", "-Xpreprocessor")):
        return "passes options to another program (linker, assembler, preprocessor)"
    if flag in ("-wrapper",) or flag.startswith(("-B", "-specs", "--specs", "-wrapper")):
        return "makes the compiler driver run other programs"
    return "not a code-generation flag"


def check_cflags(flags: list[str]) -> list[str]:
    """Raise ValueError naming every refused flag (and the allowed forms); returns the list."""
    if len(flags) > MAX_FLAGS:
        raise ValueError(f"{len(flags)} flags; at most {MAX_FLAGS} are allowed")
    bad = [f"{flag!r} ({why})" for flag in flags if (why := flag_problem(flag))]
    if bad:
        raise ValueError(f"refused compiler flag(s): {'; '.join(bad)}; allowed: {ALLOWED_HELP}")
    return flags
