// Body of gr.HTML(js_on_load=...) for the colour controls over the main panels (app/html_views.py,
// colour_controls_html). Both act in the browser only, no request: the menu copies the chosen map's three
// 256-entry tables (data-r/g/b of its <option>) into the page's one filter #cam-colormap, which every
// panel's grey heatmap layer is drawn through; the slider sets the CSS variable --cam-opacity, which those
// layers read. The panels are rebuilt on every update but only name the filter and the variable, so the
// choice stays. The colour-map name is also kept on <html data-cam-colour-map> for tests and styling.
const select = element.querySelector("select.cam-colour-map");
const slider = element.querySelector("input.cam-opacity");
const shown = element.querySelector("output");
const funcs = ["R", "G", "B"].map((c) => element.querySelector(`#cam-colormap feFunc${c}`));

function applyMap() {
  const option = select.selectedOptions[0];
  [option.dataset.r, option.dataset.g, option.dataset.b].forEach((table, i) => funcs[i].setAttribute("tableValues", table));
  document.documentElement.dataset.camColourMap = select.value;
}

function applyOpacity() {
  document.documentElement.style.setProperty("--cam-opacity", slider.value);
  shown.textContent = Number(slider.value).toFixed(2);
}

select.addEventListener("change", applyMap);
slider.addEventListener("input", applyOpacity);
applyMap();
applyOpacity();
