"""usb.core: find, Device and USBError over the virtual K230's server."""

import array
import errno

from . import _link

_KIND = {"control": 0, "isochronous": 1, "bulk": 2, "interrupt": 3}


class USBError(IOError):
    def __init__(self, strerror, error_code=None, errno=None):
        IOError.__init__(self, errno, strerror)
        self.backend_error_code = error_code


class USBTimeoutError(USBError):
    pass


class NoBackendError(ValueError):
    pass


def _raise(err, what):
    if err == "timeout":
        raise USBTimeoutError(f"Operation timed out ({what})", -7, errno.ETIMEDOUT)
    if err == "stall":
        raise USBError(f"Pipe error ({what})", -9, errno.EPIPE)
    if err == "disconnected":
        raise USBError(f"No such device (it may have been disconnected) ({what})", -4, errno.ENODEV)
    raise USBError(f"{err} ({what})", -99, errno.EIO)


class Endpoint:
    def __init__(self, e):
        self.bEndpointAddress = e["address"]
        self.bmAttributes = _KIND.get(e["kind"], 2)
        self.wMaxPacketSize = e["max_packet_size"]


class Interface:
    def __init__(self, i):
        self.bInterfaceNumber = i["number"]
        self.bInterfaceClass = i["class"]
        self.bInterfaceSubClass = i["subclass"]
        self.bInterfaceProtocol = i["protocol"]
        self._endpoints = [Endpoint(e) for e in i["endpoints"]]

    def __iter__(self):
        return iter(self._endpoints)


class Configuration:
    def __init__(self, info):
        self.bConfigurationValue = 1
        self._interfaces = [Interface(i) for i in info.get("interfaces", [])]

    def __iter__(self):
        return iter(self._interfaces)


class Device:
    def __init__(self, info):
        self._info = info
        self.idVendor = info["vid"]
        self.idProduct = info["pid"]
        self.bus = info.get("bus", 1)
        self.address = info["address"]
        port = info["port_path"].split("-", 1)[1]
        self.port_numbers = tuple(int(p) for p in port.split("."))

    def _call(self, req, what):
        req["addr"] = self.address
        r = _link.call(req)
        if not r.get("ok"):
            _raise(r.get("err", "?"), what)
        return r

    def set_configuration(self, configuration=None):
        # The device is already configured; a gone device says so.
        r = _link.call({"t": "info"})
        info = r.get("info")
        if not info or info["address"] != self.address:
            _raise("disconnected", "set_configuration")

    def get_active_configuration(self):
        r = _link.call({"t": "info"})
        info = r.get("info")
        if not info or info["address"] != self.address:
            _raise("disconnected", "get_active_configuration")
        return Configuration(info)

    def ctrl_transfer(self, bmRequestType, bRequest, wValue=0, wIndex=0, data_or_wLength=None, timeout=None):
        setup = {"rt": bmRequestType, "req": bRequest, "val": wValue, "idx": wIndex}
        if bmRequestType & 0x80:
            n = data_or_wLength or 0
            r = self._call(dict(t="ctrl_in", len=n, **setup), "control IN")
            return array.array("B", bytes.fromhex(r.get("data", "")))
        data = bytes(data_or_wLength or b"")
        self._call(dict(t="ctrl_out", data=data.hex(), **setup), "control OUT")
        return len(data)

    def write(self, endpoint, data, timeout=None):
        data = bytes(data)
        self._call({"t": "bulk_out", "ep": endpoint, "data": data.hex()}, f"bulk OUT 0x{endpoint:02x}")
        return len(data)

    def read(self, endpoint, size_or_buffer, timeout=None):
        r = self._call({"t": "bulk_in", "ep": endpoint, "len": int(size_or_buffer)}, f"bulk IN 0x{endpoint:02x}")
        return array.array("B", bytes.fromhex(r.get("data", "")))


def find(find_all=False, backend=None, custom_match=None, **kwargs):
    r = _link.call({"t": "info"})
    info = r.get("info")
    devs = []
    if info:
        d = Device(info)
        if all(getattr(d, k, None) == v for k, v in kwargs.items()):
            devs.append(d)
    if find_all:
        return iter(devs)
    return devs[0] if devs else None
