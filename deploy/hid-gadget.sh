#!/bin/bash
# Makes this device the USB keyboard and mouse of the computer its OTG port is plugged into, via
# the kernel's configfs gadget interface (libcomposite + the HID function): a boot keyboard on
# /dev/hidg0 and an absolute mouse on /dev/hidg1, the devices the pirelay agent writes reports to.
#
# The report descriptors below are byte for byte shared/hid/descriptors.ts (a test runs this script
# into a temporary directory and compares). The keyboard is a boot keyboard (subclass 1, protocol
# 1) whose one report IS the 8-byte boot report, so a BIOS or UEFI setup screen, which asks for the
# boot protocol and never reads a descriptor, gets the same bytes an OS does: the keyboard works
# before the target's OS boots. The absolute mouse cannot be a boot mouse (that is a fixed
# relative report), so it is subclass 0 / protocol 0; OSes and most UEFI setups use it.
#
# Safe to run again: it unbinds the gadget, rewrites every attribute and binds it again.
# Environment: CONFIGFS (default /sys/kernel/config; a test points it at a temporary directory),
# UDC (default: the first controller in /sys/class/udc), UDC_WAIT (seconds to wait for one to
# appear at boot, default 10), SERIAL (default: the board's serial number).
set -euo pipefail

CONFIGFS="${CONFIGFS:-/sys/kernel/config}"
UDC="${UDC:-}"
UDC_WAIT="${UDC_WAIT:-10}"
G="$CONFIGFS/usb_gadget/pirelay"

KEYBOARD_DESC='\x05\x01\x09\x06\xa1\x01\x05\x07\x19\xe0\x29\xe7\x15\x00\x25\x01\x75\x01\x95\x08\x81\x02\x95\x01\x75\x08\x81\x01\x95\x05\x75\x01\x05\x08\x19\x01\x29\x05\x91\x02\x95\x01\x75\x03\x91\x01\x95\x06\x75\x08\x15\x00\x26\xe7\x00\x05\x07\x19\x00\x29\xe7\x81\x00\xc0'
MOUSE_DESC='\x05\x01\x09\x02\xa1\x01\x09\x01\xa1\x00\x05\x09\x19\x01\x29\x05\x15\x00\x25\x01\x95\x05\x75\x01\x81\x02\x95\x01\x75\x03\x81\x01\x05\x01\x09\x30\x09\x31\x16\x00\x00\x26\xff\x7f\x75\x10\x95\x02\x81\x02\x09\x38\x15\x81\x25\x7f\x75\x08\x95\x01\x81\x06\x05\x0c\x0a\x38\x02\x81\x06\xc0\xc0'

fail() {
  echo "hid-gadget: $*" >&2
  exit 1
}

# The real configfs appears once libcomposite is loaded; a test's directory is made by hand.
if [ "$CONFIGFS" = /sys/kernel/config ] && [ ! -d "$CONFIGFS/usb_gadget" ]; then
  modprobe libcomposite || fail "cannot load libcomposite (is this a kernel with USB gadget support?)"
  mountpoint -q "$CONFIGFS" || mount -t configfs none "$CONFIGFS"
fi
mkdir -p "$CONFIGFS/usb_gadget"

if [ -z "$UDC" ]; then
  # At boot the controller (dwc2) may still be probing; wait for it rather than fail.
  for _ in $(seq 1 $((UDC_WAIT * 10))); do
    UDC="$(ls /sys/class/udc 2>/dev/null | head -n 1 || true)"
    [ -n "$UDC" ] && break
    sleep 0.1
  done
  [ -n "$UDC" ] || fail "no USB device controller in /sys/class/udc: on a Raspberry Pi, add dtoverlay=dwc2 to config.txt and modules-load=dwc2 to cmdline.txt, then reboot"
fi

mkdir -p "$G"
# Attributes cannot change while the gadget is bound or a function is linked into a config.
if [ -f "$G/UDC" ] && [ -n "$(tr -d '[:space:]' < "$G/UDC")" ]; then
  echo "" > "$G/UDC"
fi
rm -f "$G/configs/c.1/hid.keyboard" "$G/configs/c.1/hid.mouse"

serial="${SERIAL:-}"
if [ -z "$serial" ] && [ -r /proc/device-tree/serial-number ]; then
  serial="$(tr -d '\0' < /proc/device-tree/serial-number)"
fi
[ -n "$serial" ] || serial="pirelay"

echo 0x1d6b > "$G/idVendor"  # Linux Foundation
echo 0x0104 > "$G/idProduct" # Multifunction Composite Gadget
echo 0x0100 > "$G/bcdDevice"
echo 0x0200 > "$G/bcdUSB"
mkdir -p "$G/strings/0x409"
echo "$serial" > "$G/strings/0x409/serialnumber"
echo "pirelay" > "$G/strings/0x409/manufacturer"
echo "pirelay KVM" > "$G/strings/0x409/product"

mkdir -p "$G/configs/c.1/strings/0x409"
echo "Keyboard and absolute mouse" > "$G/configs/c.1/strings/0x409/configuration"
echo 0xa0 > "$G/configs/c.1/bmAttributes" # bus-powered, remote wakeup
echo 250 > "$G/configs/c.1/MaxPower"      # mA asked of the host

# hid_function NAME SUBCLASS PROTOCOL REPORT_LENGTH DESCRIPTOR
hid_function() {
  local f="$G/functions/$1"
  mkdir -p "$f"
  echo "$2" > "$f/subclass"
  echo "$3" > "$f/protocol"
  echo "$4" > "$f/report_length"
  printf '%b' "$5" > "$f/report_desc"
  # Newer kernels have these two attributes; older ones lack the files, and their defaults stand.
  # Without an OUT endpoint the host sends the LED report with SET_REPORT on the control pipe,
  # which is what a BIOS in boot protocol does anyway (with an OUT endpoint f_hid stalls that
  # request, and some firmware gives up on the keyboard); /dev/hidg0 reads it the same way. It
  # also leaves the Pi's few endpoints for other gadgets.
  if [ -e "$f/no_out_endpoint" ]; then echo 1 > "$f/no_out_endpoint"; fi
  # A report written while the host sleeps wakes it, like a key on a real keyboard.
  if [ -e "$f/wakeup_on_write" ]; then echo 1 > "$f/wakeup_on_write"; fi
}
# The kernel numbers /dev/hidgN in the order the functions are made: keyboard first, so hidg0.
hid_function hid.keyboard 1 1 8 "$KEYBOARD_DESC"
hid_function hid.mouse 0 0 7 "$MOUSE_DESC"

ln -s "$G/functions/hid.keyboard" "$G/configs/c.1/hid.keyboard"
ln -s "$G/functions/hid.mouse" "$G/configs/c.1/hid.mouse"

echo "$UDC" > "$G/UDC"

# On the real configfs each function says its device number; warn if another gadget took hidg0.
for pair in hid.keyboard:0 hid.mouse:1; do
  dev="$G/functions/${pair%%:*}/dev"
  if [ -r "$dev" ] && [ "$(cut -d: -f2 < "$dev")" != "${pair##*:}" ]; then
    echo "hid-gadget: warning: ${pair%%:*} is not /dev/hidg${pair##*:} (another HID gadget exists)" >&2
  fi
done
echo "hid-gadget: keyboard /dev/hidg0 and mouse /dev/hidg1 bound to $UDC"
