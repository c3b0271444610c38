#!/bin/sh
# /init of the USB rig guest: loads the USB modules, mounts what the
# gadgets and racklet-flash need, runs /etc/checks.sh and powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts -o ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
echo "RIG-INFO kernel $(uname -r)"
for m in $(cat /etc/modules.order); do
  case $m in
    dummy_hcd.ko) insmod /lib/modules/$m num=3 || echo "RIG-INFO insmod $m failed" ;;
    *) insmod /lib/modules/$m || echo "RIG-INFO insmod $m failed" ;;
  esac
done
mount -t configfs none /sys/kernel/config
mkdir -p /dev/usb-ffs
echo "RIG-INFO udcs $(ls /sys/class/udc | tr '\n' ' ')"
. /etc/checks.sh
echo "RIG-DONE"
sync
poweroff -f
