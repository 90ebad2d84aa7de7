"""Split a C file into top-level items, for moving code between files.

An item is one top-level definition or declaration (function, variable,
struct, typedef, macro, #include) with the comments and blank lines that
lead up to it.  A #if/#else/#endif region at top level is one item whose
name is the names of the items inside it, joined by '+'.  Joining the
text of all items gives the file back unchanged.
"""

import re

ID = r'[A-Za-z_]\w*'


def _strip(line, state):
    """The line with comments and string/char literals blanked; state
    says whether a /* comment continues from the line before."""
    out = []
    i = 0
    n = len(line)
    in_c = state['comment']
    while i < n:
        if in_c:
            j = line.find('*/', i)
            if j < 0:
                i = n
                break
            i = j + 2
            in_c = False
            out.append(' ')
            continue
        c = line[i]
        if line.startswith('/*', i):
            in_c = True
            i += 2
            continue
        if line.startswith('//', i):
            break
        if c in '"\'':
            q = c
            i += 1
            while i < n and line[i] != q:
                i += 2 if line[i] == '\\' else 1
            i += 1
            out.append('""')
            continue
        out.append(c)
        i += 1
    state['comment'] = in_c
    return ''.join(out)


class Item:
    def __init__(self, lines, code_start):
        self.lines = lines          # all lines, with leading trivia
        self.code_start = code_start
        self.name = _name(lines[code_start:])

    @property
    def text(self):
        return ''.join(self.lines)

    @property
    def code(self):
        return ''.join(self.lines[self.code_start:])

    def __repr__(self):
        return f'Item({self.name!r}, {len(self.lines)} lines)'


def _name(code_lines):
    code = ''.join(code_lines)
    st = {'comment': False}
    flat = ' '.join(_strip(ln, st) for ln in code.splitlines())
    flat = flat.strip()
    if flat.startswith('#'):
        m = re.match(r'#\s*(define|include|undef)\s+(\S+)', flat)
        if m:
            return f'#{m.group(1)} {m.group(2)}'
        return flat.split('\n')[0]
    head = flat.split('{', 1)[0]
    if flat.startswith('typedef'):
        body_end = flat.rstrip().rstrip(';')
        ids = re.findall(ID, body_end.rsplit('}', 1)[-1])
        return ids[-1] if ids else head
    m = re.match(r'(?:static\s+|const\s+)*(struct|union|enum)\s+(' + ID +
                 r')\s*\{', flat)
    if m:
        return f'{m.group(1)} {m.group(2)}'
    # function: identifier before the first '(' of the head, no '=' before
    pre = head.split('=', 1)[0]
    m = re.search(r'(' + ID + r')\s*\(', pre)
    if m and '=' not in head.split('(', 1)[0]:
        return m.group(1)
    m = re.search(r'(' + ID + r')\s*(\[[^\]]*\]\s*)*(=|;)', flat)
    if m:
        return m.group(1)
    return head[:40]


def parse(text):
    """Items of a C source text.  A header's include guard does not count
    as a region: the guard's three lines are items of their own."""
    m = re.search(r'(?m)^#ifndef (\w+)\n#define \1\n', text)
    end = text.rfind('\n#endif')
    if m and end > m.end():
        inner_end = end + 1
        head = parse_plain(text[:m.end()])
        body = parse_plain(text[m.end():inner_end])
        tail = parse_plain(text[inner_end:])
        for it in head:
            if it.code.startswith('#ifndef'):
                it.name = '#ifndef ' + m.group(1)
        return head + body + tail
    return parse_plain(text)


def parse_plain(text):
    """Items of a C source text, #if regions as one item each."""
    lines = text.splitlines(keepends=True)
    items = []
    st = {'comment': False}
    depth = 0
    cur = []
    code_start = None
    pp_depth = 0            # nesting of top-level #if regions
    pp_cont = False
    for line in lines:
        was_comment = st['comment']
        s = _strip(line, st)
        stripped = s.strip()
        cur.append(line)
        if pp_cont:
            pp_cont = line.rstrip('\n').endswith('\\')
            if not pp_cont and pp_depth == 0 and depth == 0:
                items.append(Item(cur, code_start))
                cur, code_start = [], None
            continue
        if depth == 0 and stripped.startswith('#') and not was_comment:
            if code_start is None:
                code_start = len(cur) - 1
            if re.match(r'#\s*if', stripped):
                pp_depth += 1
            elif re.match(r'#\s*endif', stripped):
                pp_depth -= 1
            pp_cont = line.rstrip('\n').endswith('\\')
            if not pp_cont and pp_depth == 0:
                items.append(Item(cur, code_start))
                cur, code_start = [], None
            continue
        if code_start is None:
            if stripped == '':
                continue        # trivia: blank or comment-only line
            code_start = len(cur) - 1
        depth += s.count('{') - s.count('}')
        if depth == 0 and pp_depth == 0 and \
                (stripped.endswith(';') or stripped.endswith('}')):
            items.append(Item(cur, code_start))
            cur, code_start = [], None
    if cur:
        it = Item(cur, code_start if code_start is not None else len(cur))
        it.name = '<trailer>'
        items.append(it)
    assert ''.join(i.text for i in items) == text
    for it in items:
        if it.code.lstrip().startswith('#if'):
            inner = parse_region(it.code)
            it.name = '+'.join(inner) if inner else it.name
    return items


def parse_region(code):
    """Names of the items inside a #if ... #endif region."""
    body = code.splitlines(keepends=True)[1:-1]
    body = [ln for ln in body if not re.match(r'\s*#\s*(else|elif)', ln)]
    try:
        return [i.name for i in parse_plain(''.join(body))
                if i.name != '<trailer>']
    except AssertionError:
        return []
