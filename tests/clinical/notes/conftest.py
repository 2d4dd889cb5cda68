from __future__ import annotations

from typing import Any

import pytest
from note_clinic import Clinic, make_clinic


@pytest.fixture
def clinic(app: Any, client: Any, engine: Any, bearer_header: Any) -> Clinic:
    return make_clinic(app, client, engine, bearer_header)
