"""The Chomsky-hierarchy suite's protocol (``protocol``), its score (``score``) and the training of
its cells (``cells``); ``toyformer bench chomsky`` runs them and makes the table."""
