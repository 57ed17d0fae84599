"""Process tuning: glibc's malloc accepts the settings that keep freed tensors mapped."""

import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_keep_freed_memory_is_accepted_by_glibc():
    # in a child process, so the test session's own allocator stays as it was
    code = "from visual_search.utils.runtime import keep_freed_memory; print(keep_freed_memory())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
