"""`manage.py generate_dicom OUTDIR`: write synthetic studies (see devstack.synthetic)."""

import argparse
import json
import os
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from devstack import synthetic

GENERATOR_OPTIONS = (
    "studies", "series", "instances", "rows", "cols", "modality", "seed",
    "transfer_syntax", "charset", "undated", "date_from", "date_to", "multiframe",
)  # fmt: skip
SUMMARY = "Wrote {files} files ({studies} studies, {bytes} bytes) to {outdir}"


def iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from None


class _ProgressStream:
    """Lets tqdm redraw its line on Django's stderr wrapper, which would otherwise end
    every write with a newline (and colour it as an error on a terminal)."""

    def __init__(self, wrapper):
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, style_func=str, ending="")

    def flush(self) -> None:
        self.wrapper.flush()


class Command(BaseCommand):
    help = "Write synthetic DICOM studies as OUTDIR/<study>/<series>/<instance>.dcm."

    def add_arguments(self, parser):
        parser.add_argument("outdir", type=Path)
        for name in ("studies", "series", "instances"):
            parser.add_argument(f"--{name}", type=int, default=1)
        parser.add_argument("--rows", type=int, default=64)
        parser.add_argument("--cols", type=int, default=64)
        parser.add_argument("--multiframe", type=int, default=1, help="frames per instance")
        parser.add_argument(
            "--modality", type=str.upper, default="CT", choices=list(synthetic.MODALITIES)
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--transfer-syntax", default="explicit", choices=list(synthetic.TRANSFER_SYNTAXES)
        )
        parser.add_argument("--charset", default="ISO_IR 100", choices=synthetic.CHARSETS)
        parser.add_argument("--undated", type=int, default=0, help="studies without StudyDate")
        parser.add_argument("--date-from", type=iso_date, default=date(2005, 1, 1))
        parser.add_argument("--date-to", type=iso_date, default=date(2024, 12, 31))
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, *args, **options):
        try:
            studies = synthetic.iter_studies(**{key: options[key] for key in GENERATOR_OPTIONS})
        except ValueError as error:
            raise CommandError(str(error)) from error
        outdir = _writable_directory(options["outdir"])
        total = options["studies"] * options["series"] * options["instances"]
        paths = self._write(outdir, studies, total, quiet=options["verbosity"] == 0)
        summary = {
            "files": len(paths),
            "studies": options["studies"],
            "bytes": sum(path.stat().st_size for path in paths),
            "outdir": str(outdir),
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(SUMMARY.format(**summary))

    def _write(self, outdir: Path, studies, total: int, quiet: bool) -> list[Path]:
        paths = []
        progress = tqdm(total=total, unit="file", file=_ProgressStream(self.stderr), disable=quiet)
        try:
            with progress:
                for index, datasets in enumerate(studies):
                    for ds in datasets:
                        paths.extend(synthetic.write_study(outdir, index, [ds]))
                        progress.update()
        except OSError as error:
            raise CommandError(f"cannot write to {outdir}: {error}") from error
        return paths


def _writable_directory(outdir: Path) -> Path:
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot create OUTDIR {outdir}: {error.strerror}") from error
    if not os.access(outdir, os.W_OK | os.X_OK):
        raise CommandError(f"OUTDIR {outdir} is not writable")
    return outdir.resolve()
