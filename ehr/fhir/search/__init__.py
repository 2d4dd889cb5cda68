"""FHIR search: parameter definitions, index extraction and query parsing."""

from ehr.fhir.search.indexer import index_values
from ehr.fhir.search.params import RESOURCE_TYPES, SearchParam, get_param, search_params_for
from ehr.fhir.search.parse import SearchRequest, parse_search

__all__ = [
    "RESOURCE_TYPES",
    "SearchParam",
    "SearchRequest",
    "get_param",
    "index_values",
    "parse_search",
    "search_params_for",
]
