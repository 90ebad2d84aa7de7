#!/usr/bin/env python3
"""Print the commit message (subject, blank line, body) of a format-patch
file."""
import email
import sys
from email import policy

with open(sys.argv[1], 'rb') as f:
    m = email.message_from_binary_file(f, policy=policy.default)
subj = str(m['Subject']).replace('[PATCH] ', '', 1)
body = m.get_payload(decode=True).decode()
body = body.split('\n---\n')[0]
print(subj + '\n\n' + body.rstrip())
