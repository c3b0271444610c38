"""usb.util: the constants and helpers k230-flash uses (values of USB 2.0 §9.3)."""

CTRL_OUT = 0x00
CTRL_IN = 0x80
CTRL_TYPE_STANDARD = 0x00
CTRL_TYPE_CLASS = 0x20
CTRL_TYPE_VENDOR = 0x40
CTRL_RECIPIENT_DEVICE = 0
CTRL_RECIPIENT_INTERFACE = 1
ENDPOINT_OUT = 0x00
ENDPOINT_IN = 0x80
ENDPOINT_TYPE_CTRL = 0
ENDPOINT_TYPE_ISO = 1
ENDPOINT_TYPE_BULK = 2
ENDPOINT_TYPE_INTR = 3


def endpoint_type(bmAttributes):
    return bmAttributes & 0x3


def endpoint_direction(address):
    return address & 0x80


def dispose_resources(device):
    device._disposed = True
