"""Build lines: plan header verdict, seal, verify, flipped byte, and a failed build."""

from dataclasses import replace

from gps_denied_inference.artifacts.gate import PLAN_PREFIX_BYTES
from gps_denied_inference.artifacts.sealing import sha256_sidecar_path
from gps_denied_inference.selftest import build
from gps_denied_inference.selftest.report import FAIL, PASS, Report, SKIP
from gps_denied_inference.selftest.runner import run_selftest
from selftest.conftest import built_session, lines_by_check, small_options


def test_the_plan_header_is_printed_and_judged_by_the_gate(fake, tmp_path):
    session = built_session(tmp_path)
    report = Report()
    build.check_plan_header(report, session.demo_engine, session.gpu.expectation())
    line = report.lines[0]
    assert line.status == PASS
    assert line.measured.startswith('66 74 72 74 ')  # b'ftrt'
    assert len(line.measured.split('  |')[0].split()) == PLAN_PREFIX_BYTES
    assert "b'ftrt' at 0-3, TensorRT 10.3.0 at 24-26" in line.measured
    data = bytearray(session.demo_engine.read_bytes())
    data[25] = 4  # the header now names TensorRT 10.4.0, the manifest 10.3.0
    session.demo_engine.write_bytes(bytes(data))
    report = Report()
    build.check_plan_header(report, session.demo_engine, session.gpu.expectation())
    assert report.lines[0].status == FAIL
    assert 'TensorRT 10.4.0 at 24-26' in report.lines[0].measured
    assert report.lines[0].reason.startswith('gate: ')
    session.close()


def test_a_header_in_another_layout_is_printed_and_skipped(fake, tmp_path):
    session = built_session(tmp_path)
    data = bytearray(session.demo_engine.read_bytes())
    data[:4] = b'xxxx'
    session.demo_engine.write_bytes(bytes(data))
    report = Report()
    build.check_plan_header(report, session.demo_engine, session.gpu.expectation())
    assert report.lines[0].status == SKIP
    assert report.lines[0].measured.endswith('(not the known layout)')
    session.close()


def test_the_device_name_is_checked_as_the_gate_checks_it(fake, tmp_path):
    session = built_session(tmp_path)
    expectation = session.gpu.expectation()
    assert expectation.device_name == 'Orin (fake)'
    report = Report()
    build.check_device_name(report, session.demo_engine, expectation)
    assert report.lines[0].status == PASS
    other = replace(expectation, device_name='NVIDIA Jetson Orin Nano')
    build.check_device_name(report, session.demo_engine, other)
    assert report.lines[1].status == FAIL
    assert report.lines[1].reason.startswith('gate: expected an engine built on')
    session.close()


def test_on_a_jetson_the_device_tree_model_is_the_name_builds_record_and_gate(fake, tmp_path):
    proc = tmp_path / 'proc'
    (proc / 'device-tree').mkdir(parents=True)
    (proc / 'device-tree' / 'model').write_bytes(b'NVIDIA Jetson AGX Orin Developer Kit\0')
    session = built_session(tmp_path, proc_root=str(proc))
    assert session.gpu.expectation().device_name == 'NVIDIA Jetson AGX Orin Developer Kit'
    report = Report()
    build.check_device_name(report, session.demo_engine, session.gpu.expectation())
    assert report.lines[0].status == PASS, report.lines[0]
    session.close()


def test_a_flipped_byte_that_the_gate_accepts_fails(fake, tmp_path, monkeypatch):
    session = built_session(tmp_path)
    unflipped = tmp_path / 'unflipped'
    flip = build.flipped_copy

    def copy_without_flipping(path, folder):
        copy = flip(path, folder)
        build.shutil.copyfile(path, copy)
        return copy
    monkeypatch.setattr(build, 'flipped_copy', copy_without_flipping)
    report = Report()
    build.check_flipped_byte(report, 'engine-flipped-byte', session.demo_engine,
                             session.gpu.expectation(), unflipped)
    assert report.lines[0].status == FAIL
    assert report.lines[0].measured == 'accepted'
    session.close()


def test_a_broken_seal_fails_the_sealed_and_verify_lines(fake, tmp_path):
    session = built_session(tmp_path)
    sha256_sidecar_path(session.demo_engine).write_text('0' * 64 + '  demo_fp16.engine\n')
    report = Report()
    build.check_sealed(report, session.demo_engine)
    build.check_verify(report, 'engine-verify', session.demo_engine, session.gpu.expectation())
    assert [line.status for line in report.lines] == [FAIL, FAIL]
    assert 'digest' in report.lines[1].reason
    session.close()


def test_a_failed_builder_build_fails_its_line_and_skips_what_needs_the_engine(fake, tmp_path):
    fake.fail('Builder.build_serialized_network')
    lines = lines_by_check(run_selftest(small_options(tmp_path)))
    assert lines['build/engine-builder'].status == FAIL
    for key in ('build/plan-header', 'build/engine-sealed', 'build/engine-verify'):
        assert lines[key].reason == 'the builder-API build failed', key
    assert lines['load/load-tensorrt'].status == SKIP
    assert 'was not built' in lines['load/load-tensorrt'].reason
    assert lines['build/engine-polygraphy'].status == PASS
