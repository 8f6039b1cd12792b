// Body of gr.HTML(js_on_load=...) for the two photo panels: drag on the photo to draw a ground-truth box.
// Gradio runs it once per panel with `element` (the panel) and `trigger`; the panel's content is replaced
// on every update, so listeners sit on `element` and find the picture (`.cam-stack`) per drag.
// On release it sends trigger('select', {index: [fx0, fy0, fx1, fy1], value: "add" | "replace"}): the corners as
// fractions of the picture, so the server maps them to original pixels; "add" (Shift held at the start or the
// end of the drag, or the "add boxes" checkbox #gt-add ticked, for touch screens) appends the box to the
// ground-truth field's boxes, "replace" replaces them. Shorter drags than MIN_PX are clicks and send nothing.
const MIN_PX = 4;
let drag = null;
const clamp = (v) => Math.min(1, Math.max(0, v));
const addMode = (event) => event.shiftKey || Boolean(document.querySelector("#gt-add input[type=checkbox]")?.checked);

function corners(event) {
  const r = drag.rect;
  const xs = [drag.x, event.clientX].map((x) => clamp((x - r.left) / r.width)).sort((a, b) => a - b);
  const ys = [drag.y, event.clientY].map((y) => clamp((y - r.top) / r.height)).sort((a, b) => a - b);
  return [xs[0], ys[0], xs[1], ys[1]];
}

element.addEventListener("pointerdown", (event) => {
  const stack = event.target.closest(".cam-stack");
  if (!stack || event.button !== 0) return;
  event.preventDefault(); // no text selection, no native image drag
  const ghost = document.createElement("div");
  ghost.className = "gt-ghost";
  ghost.style.cssText = "position:absolute;border:2px dashed rgb(255,215,0);outline:1px solid black;pointer-events:none";
  stack.appendChild(ghost);
  drag = { x: event.clientX, y: event.clientY, rect: stack.getBoundingClientRect(), ghost, add: addMode(event) };
  stack.setPointerCapture(event.pointerId);
});

element.addEventListener("pointermove", (event) => {
  if (!drag) return;
  const [x0, y0, x1, y1] = corners(event);
  Object.assign(drag.ghost.style, {
    left: `${100 * x0}%`, top: `${100 * y0}%`, width: `${100 * (x1 - x0)}%`, height: `${100 * (y1 - y0)}%`,
  });
});

function finish(event, send) {
  if (!drag) return;
  const box = corners(event);
  const { rect, ghost } = drag;
  const add = drag.add || addMode(event);
  drag = null;
  const big = (box[2] - box[0]) * rect.width >= MIN_PX && (box[3] - box[1]) * rect.height >= MIN_PX;
  if (send && big) {
    trigger("select", { index: box, value: add ? "add" : "replace" });
    setTimeout(() => ghost.remove(), 5000); // the updated panel replaces it; this covers an error reply
  } else {
    ghost.remove();
  }
}

element.addEventListener("pointerup", (event) => finish(event, true));
element.addEventListener("pointercancel", (event) => finish(event, false));
