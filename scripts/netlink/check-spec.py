#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check Documentation/netlink/specs/membroker.yaml.

  check-spec.py KSRC

KSRC is a kernel source tree new enough to carry the netlink schemas and
tools/net/ynl (scripts/netlink/ksrc.sh extracts one from Debian's
linux-source-6.12).  The spec must

  - validate against the kernel's own schema for its protocol, loaded
    by ynl's own parser (tools/net/ynl/lib), which must accept it;
  - name every constant of include/uapi/linux/membroker.h, with its
    value, and no other: a C file asserting each name the spec implies
    (as ynl-gen-c would spell it) equals the spec's value is compiled
    against the header, and the header's MEMBROKER_* names must all be
    among them.

Prints one line per finding and exits 1 if there is any.
"""
import os
import re
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.path.join(ROOT, 'Documentation/netlink/specs/membroker.yaml')
HEADER = os.path.join(ROOT, 'include/uapi/linux/membroker.h')


def c_name(*parts):
    return ''.join(parts).upper().replace('-', '_')


def spec_constants(spec):
    """{C name: value} as the spec defines them."""
    out = {}
    y = spec.yaml
    out[c_name(y['c-family-name'])] = '"%s"' % spec.name
    out[c_name(y['c-version-name'])] = y.get('version', 1)
    for d in y.get('definitions', []):
        prefix = d['name-prefix']
        entries = [e if isinstance(e, str) else e['name'] for e in d['entries']]
        if d['type'] == 'flags':
            for i, e in enumerate(entries):
                out[c_name(prefix, e)] = '(1U << %d)' % i
            continue
        start = d.get('value-start', 0)
        for i, e in enumerate(entries):
            out[c_name(prefix, e)] = start + i
        if d.get('render-max'):
            last = start + len(entries) - 1
            out[c_name('__', prefix, 'max')] = last + 1
            out[c_name(prefix, 'max')] = last
    for aset in spec.attr_sets.values():
        prefix = aset.yaml['name-prefix']
        last = 0
        for attr in aset.attrs.values():
            out[c_name(prefix, attr.name)] = attr.value
            last = max(last, attr.value)
        out[c_name(aset.yaml['attr-cnt-name'])] = last + 1
        out[c_name(aset.yaml['attr-max-name'])] = last
    prefix = y['operations']['name-prefix']
    last = 0
    for name, op in spec.msgs.items():
        out[c_name(prefix, name)] = op.value
        last = max(last, op.value)
    out[c_name(y['cmd-cnt-name'])] = last + 1
    out[c_name(y['cmd-max-name'])] = last
    for grp in y['mcast-groups']['list']:
        out[c_name(grp['c-define-name'])] = '"%s"' % grp['name']
    return out


def header_names():
    """Every MEMBROKER_* name the header defines (enums and #defines)."""
    text = open(HEADER).read()
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    names = set(re.findall(r'^#define\s+(MEMBROKER_\w+)', text, re.M))
    for body in re.findall(r'enum\s+\w+\s*\{(.*?)\}', text, re.S):
        names |= set(re.findall(r'^\s*(_*MEMBROKER_\w+)', body, re.M))
    return names


def main():
    ksrc = sys.argv[1]
    sys.path.insert(0, os.path.join(ksrc, 'tools/net/ynl'))
    from lib import SpecFamily  # noqa: E402 (the kernel's ynl)

    bad = 0
    proto = yaml.safe_load(open(SPEC))['protocol']
    schema = os.path.join(ksrc, 'Documentation/netlink', proto + '.yaml')
    try:
        spec = SpecFamily(SPEC, schema)
    except Exception as e:  # jsonschema's or ynl's complaint, as it is
        print('%s: not valid against %s: %s' % (SPEC, schema, e))
        return 1
    print('spec: valid against %s, parsed by ynl' %
          os.path.relpath(schema, ksrc))

    consts = spec_constants(spec)
    lines = ['#include <linux/membroker.h>', 'int main(void) { return 0; }']
    for name, value in sorted(consts.items()):
        if isinstance(value, str) and value.startswith('"'):
            # the name must exist; its text is compared below
            lines.append('static const char check_%s[] = %s;' % (name, name))
        else:
            lines.append('_Static_assert(%s == %s, "%s is not %s");'
                         % (name, value, name, value))
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'spec.c')
        with open(src, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        cc = subprocess.run(['gcc', '-std=gnu11', '-fsyntax-only',
                             '-I', os.path.join(ROOT, 'include/uapi'), src],
                            capture_output=True, text=True)
        if cc.returncode:
            for line in cc.stderr.splitlines():
                if 'error' in line:
                    print('spec/header: ' + line.split('error: ', 1)[-1])
            bad = 1
    # strings: compare the text, which sizeof cannot
    text = open(HEADER).read()
    for name, value in consts.items():
        if isinstance(value, str) and value.startswith('"'):
            m = re.search(r'#define\s+%s\s+("[^"]*")' % name, text)
            if not m or m.group(1) != value:
                print('spec/header: %s is not %s' % (name, value))
                bad = 1
    extra = sorted(header_names() - set(consts))
    if extra:
        print('spec: the header defines what the spec does not: ' +
              ', '.join(extra))
        bad = 1
    if not bad:
        print('spec: the %d names of the header, with their values' %
              len(consts))
    return bad


if __name__ == '__main__':
    sys.exit(main())
