"""LD2410 frame parser and command builder, against traces and hand-made frames."""

from binascii import hexlify, unhexlify

from mpytest import eq, ok, raises, read_timed_hex, read_trace
from softplace_fw import ld2410

# A basic report written out byte by byte: still target at 81 cm, energy 59, detect 80 cm.
BASIC = unhexlify("f4f3f2f1" "0d00" "02aa" "02" "0000" "00" "5100" "3b" "5000" "5500" "f8f7f6f5")


def test_basic_frame_fields():
    reports = ld2410.FrameParser().feed(BASIC)
    eq(len(reports), 1)
    r = reports[0]
    eq((r.state, r.moving_cm, r.moving_energy, r.still_cm, r.still_energy, r.detect_cm),
       (2, 0, 0, 81, 59, 80))
    ok(r.presence, "still target means presence")
    eq(r.moving_gates, None)


def test_engineering_frame_gates():
    frame = unhexlify(read_trace("ld2410_engineering.hex")[0])
    eq(frame[4], 35, "engineering payload length")
    r = ld2410.FrameParser().feed(frame)[0]
    eq(r.state, ld2410.STATE_BOTH)
    eq(r.moving_gates, [60, 40, 12, 5, 3, 2, 1, 0, 0])
    eq(r.still_gates, [0, 0, 35, 20, 8, 4, 2, 1, 0])


def test_session_trace_rejects_corrupt_frames():
    parser = ld2410.FrameParser()
    reports = []
    for _t, data in read_timed_hex("ld2410_session.hex"):
        reports.extend(parser.feed(data))
    eq(parser.rejected, 3, "bad footer, bad check byte, impossible state")
    eq(len(reports), 140 - 3)


def test_frame_split_byte_by_byte():
    parser = ld2410.FrameParser()
    got = []
    for b in b"\x00\xff" + BASIC + BASIC:
        got.extend(parser.feed(bytes((b,))))
    eq(len(got), 2)
    eq(parser.rejected, 0)


def test_noise_does_not_grow_buffer():
    parser = ld2410.FrameParser()
    for _ in range(50):
        parser.feed(b"\xf4\xf3\xf2" + bytes(range(40)))
    ok(len(parser._buf) <= 256, "buffer bounded")
    eq(len(parser.feed(BASIC)), 1, "recovers after noise")


def test_bogus_length_resyncs():
    junk = b"\xf4\xf3\xf2\xf1\xff\xff" + BASIC
    parser = ld2410.FrameParser()
    eq(len(parser.feed(junk)), 1)
    eq(parser.rejected, 1)


def test_command_frames_bytes():
    eq(hexlify(ld2410.enable_config()), b"fdfcfbfa0400ff00010004030201")
    eq(hexlify(ld2410.end_config()), b"fdfcfbfa0200fe0004030201")
    eq(hexlify(ld2410.max_gates(8, 8, 5)),
       b"fdfcfbfa1400600000000800000001000800000002000500000004030201")
    eq(hexlify(ld2410.gate_sensitivity(ld2410.ALL_GATES, 40, 40)),
       b"fdfcfbfa14006400" b"0000ffff0000" b"010028000000" b"020028000000" b"04030201")
    frame = ld2410.gate_sensitivity(3, 40, 30)
    eq(frame[6:8], b"\x64\x00")
    eq(frame[8:14], b"\x00\x00\x03\x00\x00\x00")
    eq(frame[14:20], b"\x01\x00\x28\x00\x00\x00")
    eq(frame[20:26], b"\x02\x00\x1e\x00\x00\x00")


def test_command_values_checked():
    raises(ValueError, ld2410.max_gates, 1, 8, 5)
    raises(ValueError, ld2410.max_gates, 8, 9, 5)
    raises(ValueError, ld2410.gate_sensitivity, 9, 50, 50)
    raises(ValueError, ld2410.gate_sensitivity, 2, 101, 50)


def test_ack_parsed_from_stream():
    parser = ld2410.FrameParser()
    items = parser.feed(BASIC + ld2410.ack_frame(ld2410.CMD_ENABLE_CONFIG, 0, b"\x01\x00\x40\x00"))
    eq(len(items), 2)
    ack = items[1]
    ok(isinstance(ack, ld2410.Ack), "second item is an ack")
    eq(ack.command, ld2410.CMD_ENABLE_CONFIG)
    ok(ack.ok, "status 0")
    eq(ld2410.FrameParser().feed(ld2410.ack_frame(0x0064, 1))[0].ok, False)


def test_encoder_round_trip():
    rep = ld2410.Report(1, 300, 77, 0, 0, 310)
    back = ld2410.FrameParser().feed(ld2410.report_frame(rep))[0]
    eq((back.state, back.moving_cm, back.moving_energy, back.detect_cm), (1, 300, 77, 310))
