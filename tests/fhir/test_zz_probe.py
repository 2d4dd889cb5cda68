import sys
sys.path.insert(0, "/work/main/tests/fhir")
from test_api_errors import _garbage_bodies, _ENDPOINTS, FHIR_JSON, versions

EXTRA = [
    b'{"resourceType":"Patient","name":[{"family":"a\\u0000b"}]}',
    b'{"resourceType":"Patient","name":[{"family":"a\\u0001b"}]}',
    b'{"resourceType":"Patient","name":[{"family":"\\ud800"}]}',
    b'{"resourceType":"Patient","identifier":[{"system":"a","value":"\\u0000"}]}',
    b'{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1e400}}',
    b'{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1e-400}}',
    b'{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":-0}}',
    b'{"resourceType":"Patient","birthDate":"0001-01-01"}',
    b'{"resourceType":"Patient","birthDate":"9999-12-31"}',
    b'{"resourceType":"Patient","deceasedDateTime":"9999-12-31T23:59:59.999999+14:00"}',
    b'{"resourceType":"Patient","id":"' + b"a"*64 + b'"}',
    b'{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueInteger":99999999999999999999}',
    b'{"resourceType":"Patient","multipleBirthInteger":99999999999999999999}',
]

def test_probe(app):
    from fastapi.testclient import TestClient
    client = TestClient(app, raise_server_exceptions=False)
    bad = []
    client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"}, headers=FHIR_JSON)
    for raw in _garbage_bodies() + EXTRA:
        for method, path in _ENDPOINTS:
            r = client.request(method, path, content=raw, headers=FHIR_JSON)
            if r.status_code >= 500 or (r.status_code < 300 and not path.endswith("$validate") and raw in EXTRA[:4]):
                bad.append((method, path, raw[:100], r.status_code, r.text[:200]))
    for b in bad: print(b)
    assert not bad
