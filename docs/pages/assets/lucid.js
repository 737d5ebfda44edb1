// A button above a rendered diagram that switches between fitting the column and full size
// (wide models are hard to read when fitted), scrolling sideways at full size.
function addZoomButton(pre) {
  const svg = pre.querySelector("svg");
  if (!svg) return;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "btn btn-sm btn-outline-secondary lucid-zoom";
  button.textContent = "Full size";
  button.addEventListener("click", () => {
    const full = pre.classList.toggle("lucid-full");
    svg.style.width = full ? `${svg.viewBox.baseVal.width}px` : "";
    svg.style.maxWidth = full ? "none" : `${svg.viewBox.baseVal.width}px`;
    button.textContent = full ? "Fit to page" : "Full size";
  });
  pre.before(button);
}

// Renders the page's formulas (KaTeX) and Mermaid diagrams with the scripts bundled into the
// site at build time, so that pages work offline. <body data-diagrams="done|error"> tells
// tests (and curious readers) whether every diagram became an SVG.
document.addEventListener("DOMContentLoaded", async () => {
  if (window.renderMathInElement) {
    for (const el of document.querySelectorAll(".arithmatex")) {
      renderMathInElement(el, {
        delimiters: [
          { left: "\\[", right: "\\]", display: true },
          { left: "\\(", right: "\\)", display: false },
        ],
        throwOnError: false,
      });
    }
  }
  const diagrams = document.querySelectorAll("pre.mermaid");
  if (!window.mermaid || diagrams.length === 0) return;
  mermaid.initialize({ startOnLoad: false });
  try {
    await mermaid.run({ nodes: diagrams });
    diagrams.forEach(addZoomButton);
    document.body.dataset.diagrams = "done";
  } catch (err) {
    document.body.dataset.diagrams = "error";
    console.error(err);
  }
});
