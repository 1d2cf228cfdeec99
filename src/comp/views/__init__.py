"""Views: everything that shows results to a person, and nothing that computes them.

- :mod:`comp.views.tables`: rich tables of result rows (every command's printout);
- :mod:`comp.views.plots`: plotly charts (accuracy by length), offline HTML and PNG export;
- :mod:`comp.views.patching`: heatmaps of patching sweeps;
- :mod:`comp.views.probes`: the probe heatmap (layer x position class);
- :mod:`comp.views.attention`: circuitsvis attention views of a run, as offline HTML;
- :mod:`comp.views.browser`: headless, offline Chromium to render and picture the pages.
"""
