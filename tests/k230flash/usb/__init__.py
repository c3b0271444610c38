"""A stand-in for pyusb that reaches a virtual K230 instead of a USB bus.

PyPI k230-flash (kendryte/k230_flash_py) talks to the board through pyusb:
usb.core.find, Device.set_configuration / get_active_configuration /
ctrl_transfer / write / read, usb.util's constants and helpers, and
usb.core.USBError. This package offers exactly those, and forwards every
transfer as one JSON line to `racklet-flash sim <k230 board> --tcp ADDR`
(crates/sim/src/serve/canaan.rs), whose answer decides the result: data,
a STALL (EPIPE), a timeout (ETIMEDOUT) or a gone device (ENODEV). Where
the server listens is read from RACKLET_K230_SIM ("127.0.0.1:PORT").

Put this directory first on PYTHONPATH and run k230-flash unchanged; see
protocols/canaan/README.md ("k230-flash against the virtual K230").
Test code, not shipped: nothing here is k230-flash's or pyusb's.
"""
