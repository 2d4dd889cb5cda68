"""Clinical notes: preparation, integration and psychotherapy notes as DocumentReference.

A note is a draft (``docStatus`` preliminary) its author alone may change, until the author
signs it; then it is locked and changes only by addendum or by being marked entered-in-error.
"""
