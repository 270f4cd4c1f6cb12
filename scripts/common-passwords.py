#!/usr/bin/env python3
# Writes Sources/CallTraceKeys/CommonPasswords.swift from Debian's john-data password list
# (apt-get install john-data): python3 scripts/common-passwords.py
import pathlib
source = pathlib.Path("/usr/share/john/password.lst")
words, seen = [], set()
for line in source.read_text(encoding="latin-1").split("\n"):
    word = line.strip().lower()
    if word and not line.startswith("#!comment") and word not in seen and '"' not in word and "\\" not in word:
        seen.add(word)
        words.append(word)
target = pathlib.Path(__file__).resolve().parent.parent / "Sources/CallTraceKeys/CommonPasswords.swift"
target.write_text('''// Generated from Debian's john-data 1.9.0 (/usr/share/john/password.lst): "compiled by Solar
// Designer of Openwall Project in 1996 through 2011. It is assumed to be in the public domain."
// The most common passwords seen on Unix systems and in website compromises, most common first,
// lower-cased. Regenerate with scripts/common-passwords.py; do not edit by hand.

extension PasswordHasher {
    /// %d common passwords, lower-cased.
    static let commonPasswordList: Set<String> = Set(#"""
%s
"""#.split(separator: "\\n").map(String.init))
}
''' % (len(words), "\n".join(words)))
print(f"{len(words)} passwords written to {target}")
