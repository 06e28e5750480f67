#!/usr/bin/env python3
"""Decode heartbeat 3 UDP messages (and ICMP/ARP events) from a pcap.

usage: decode.py PCAP [MARKS] [--all]

A heartbeat message on the wire: "###\n" then fields "LEN:(T)name=value,"
(LEN = length of "(T)name=value", T = field type: 0 string, 1 binary,
2 nested message, 3 list, 4 compressed), then "%%%\n" then the auth
netstring "LEN:KEYNO DIGEST," (shown after "|" with --all; heartbeat 3.0.6
also carries an "auth" field inside the message). Prints one line per message with the time
offset from the first packet. Without --all, plain keepalives (t=status with
the same st as that sender's previous one) and their NS_ackmsg are folded
into a count. MARKS: lines "EPOCH text" (test actions), merged in by time.
"""
import struct, sys

BORING = {'auth', 'ld', 'ttl', 'hg', 'ts', 'srcuuid', 'protocol', 'dt', 'destuuid'}

def pcap_packets(path):
    data = open(path, 'rb').read()
    magic = struct.unpack('<I', data[:4])[0]
    if magic in (0xa1b2c3d4, 0xa1b23c4d):
        e = '<'
    else:
        e = '>'
        magic = struct.unpack('>I', data[:4])[0]
    nsec = magic == 0xa1b23c4d
    linktype = struct.unpack(e + 'I', data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(e + 'IIII', data[off:off + 16])
        off += 16
        pkt = data[off:off + incl]
        off += incl
        yield sec + frac / (1e9 if nsec else 1e6), linktype, pkt

def parse_fields(b):
    """Parse 'LEN:(T)name=value,' fields up to '%%%'; return [(name, type, value)]."""
    out, i = [], 0
    while i < len(b):
        if b[i:i + 4] in (b'%%%\n', b'%%%'):
            break
        if b[i:i + 1] in (b'\n', b' '):
            i += 1
            continue
        j = b.index(b':', i)
        n = int(b[i:j])
        item = b[j + 1:j + 1 + n]
        i = j + 1 + n + 1          # skip trailing ','
        t = int(item[1:item.index(b')')])
        nv = item[item.index(b')') + 1:]
        k, _, v = nv.partition(b'=')
        name = k.decode()
        if t == 1:
            val = v.hex()
        elif t == 2:
            inner = v
            if inner.startswith(b'###\n'):
                inner = inner[4:]
            val = '{' + ' '.join('%s=%s' % (a, c) for a, _, c in parse_fields(inner)) + '}'
        else:
            val = v.decode(errors='replace')
        out.append((name, t, val))
    return out

def decode(path, marks_path=None, show_all=False):
    events = []
    t0 = None
    for ts, lt, pkt in pcap_packets(path):
        if t0 is None:
            t0 = ts
        if lt != 1 or len(pkt) < 14:
            continue
        etype = struct.unpack('>H', pkt[12:14])[0]
        p = pkt[14:]
        if etype == 0x0806 and len(p) >= 28:
            op = struct.unpack('>H', p[6:8])[0]
            spa = '.'.join(map(str, p[14:18]))
            tpa = '.'.join(map(str, p[24:28]))
            if spa == tpa or op == 2 and spa.endswith('.100'):
                events.append((ts, 'ARP %s %s (%s)' % ('request' if op == 1 else 'reply',
                               spa, 'gratuitous' if spa == tpa else 'to ' + tpa)))
            continue
        if etype != 0x0800:
            continue
        ihl = (p[0] & 15) * 4
        proto = p[9]
        src = '.'.join(map(str, p[12:16]))
        dst = '.'.join(map(str, p[16:20]))
        l4 = p[ihl:]
        if proto != 17:
            continue
        sport, dport = struct.unpack('>HH', l4[:4])
        payload = l4[8:]
        if 694 not in (sport, dport) or not payload.startswith(b'###'):
            continue
        fields = parse_fields(payload[4:])
        k = payload.find(b'%%%\n')
        trailer = payload[k + 4:].decode(errors='replace').strip() if k >= 0 else ''
        events.append((ts, ('HB', src, dst, fields, trailer)))
    if marks_path:
        for ln in open(marks_path):
            ts, _, txt = ln.strip().partition(' ')
            events.append((float(ts), '>>> ' + txt))
    events.sort(key=lambda e: e[0])
    t0 = min(t0, events[0][0]) if events else t0
    last_st, folded = {}, {}
    lines = []
    def flush(src):
        n = folded.pop(src, 0)
        if n:
            lines.append('         (%s: %d keepalive status/ack messages folded)' % (src, n))
    for ts, ev in events:
        off = ts - t0
        if isinstance(ev, str):
            lines.append('%8.3f  %s' % (off, ev))
            continue
        _, src, dst, fields, trailer = ev
        d = {}
        for k, _, v in fields:
            d.setdefault(k, v)
        t = d.get('t', '?')
        node = d.get('src', src)
        if not show_all:
            if t == 'status' and last_st.get(node) == d.get('st'):
                folded[node] = folded.get(node, 0) + 1
                continue
            if t == 'NS_ackmsg':
                folded[node] = folded.get(node, 0) + 1
                continue
        if t == 'status':
            last_st[node] = d.get('st')
        flush(node)
        shown = ['%s=%s' % (k, v) for k, _, v in fields if show_all or k not in BORING]
        if show_all:
            shown.append('| %s' % trailer)
        lines.append('%8.3f  %s>%s  %s' % (off, src, dst, ' '.join(shown)))
    for src in list(folded):
        flush(src)
    return '\n'.join(lines) + '\n'

if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if a != '--all']
    sys.stdout.write(decode(args[0], args[1] if len(args) > 1 else None, '--all' in sys.argv))
