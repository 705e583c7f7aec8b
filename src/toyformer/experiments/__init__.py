"""Many runs: the results store (``store``), sweeps over configurations (``sweeps``), the
recipes of the reference experiments (``recipes``), and training that records into the store
(``recording``)."""
