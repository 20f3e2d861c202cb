#!/usr/bin/env bash
# Installs a built ec2snap .deb on this machine and checks it as an admin would, then removes it:
# the binary, `man ec2snap`, the bash completion, the zsh and fish files, the systemd units
# (`systemd-analyze verify`), the example configuration, and that `dpkg -r` takes it all away.
# Needs root, dpkg, man-db and systemd (apt-get install man-db systemd).
#   scripts/check-package.sh path/to/ec2snap_*.deb
set -euo pipefail
DEB=${1:?usage: scripts/check-package.sh path/to/ec2snap_VERSION_ARCH.deb}
fail() {
    echo "PACKAGE CHECK FAILED: $*" >&2
    exit 1
}
ok() { echo "ok: $*"; }

dpkg-deb --info "$DEB" | sed -n '/Package:/,/Description:/p'
dpkg -i "$DEB" >/dev/null
ok "dpkg -i $DEB"
trap 'dpkg -r ec2snap >/dev/null 2>&1 || true' EXIT

[[ $(command -v ec2snap) == /usr/bin/ec2snap ]] || fail "ec2snap is not /usr/bin/ec2snap"
ec2snap -V | grep -q '^ec2snap v' || fail "ec2snap -V"
ok "$(ec2snap -V)"

page=$(MANWIDTH=100 man ec2snap 2>/dev/null) || fail "man ec2snap"
for section in NAME SYNOPSIS OPTIONS RETENTION "COLD SNAPSHOTS" "EXIT STATUS" FILES EXAMPLES; do
    grep -q "^$section" <<<"$page" || fail "man ec2snap has no $section section"
done
warnings=$(MANWIDTH=100 man --warnings ec2snap 2>&1 >/dev/null || true)
[[ -z $warnings ]] || fail "man ec2snap warns: $warnings"
ok "man ec2snap: $(wc -l <<<"$page") lines, every section, no warning"

# The bash completion, loaded as bash-completion would, completes a long flag.
got=$(bash -c 'source /usr/share/bash-completion/completions/ec2snap
    COMP_WORDS=(ec2snap --keep-d); COMP_CWORD=1; COMP_LINE="ec2snap --keep-d"; COMP_POINT=${#COMP_LINE}
    _ec2snap ec2snap --keep-d ec2snap; printf "%s\n" "${COMPREPLY[@]}"')
[[ $got == --keep-daily ]] || fail "bash completion of --keep-d gave: $got"
ok "bash completion: --keep-d -> $got"
grep -q '^#compdef ec2snap' /usr/share/zsh/vendor-completions/_ec2snap || fail "zsh completion"
grep -q 'complete -c ec2snap' /usr/share/fish/vendor_completions.d/ec2snap.fish || fail "fish completion"
ok "zsh and fish completions installed"

[[ -f /etc/ec2snap/example.conf && -f /usr/share/doc/ec2snap/README.md && -f /usr/share/doc/ec2snap/docs/commands.md && -f /usr/share/doc/ec2snap/examples/front.conf ]] ||
    fail "configuration example or documentation missing"
# The units, as an instance with the example configuration.
cp /etc/ec2snap/example.conf /etc/ec2snap/pkgcheck.conf
out=$(systemd-analyze verify ec2snap@pkgcheck.service ec2snap@pkgcheck.timer 2>&1) || fail "systemd-analyze verify: $out"
# Lines about other units of this machine are not ours.
if grep -i 'ec2snap' <<<"$out"; then fail "systemd-analyze verify warns about ec2snap"; fi
ok "systemd-analyze verify ec2snap@pkgcheck.service ec2snap@pkgcheck.timer: clean"
rm /etc/ec2snap/pkgcheck.conf

trap - EXIT
dpkg -r ec2snap >/dev/null
for f in /usr/bin/ec2snap /usr/share/man/man1/ec2snap.1.gz /usr/lib/systemd/system/ec2snap@.service \
    /usr/share/bash-completion/completions/ec2snap; do
    [[ ! -e $f ]] || fail "$f is still there after dpkg -r"
done
ok "dpkg -r: binary, man page, units and completions gone (the conffile /etc/ec2snap/example.conf stays until dpkg -P)"
dpkg -P ec2snap >/dev/null
[[ ! -e /etc/ec2snap/example.conf ]] || fail "dpkg -P left /etc/ec2snap/example.conf"
echo "PACKAGE CHECK PASSED"
