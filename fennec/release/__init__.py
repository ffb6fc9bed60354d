"""The checksummed benchmark release: export (:mod:`fennec.release.export`) and evaluation from the release
alone (:mod:`fennec.release.evaluate`)."""
