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
    document.body.dataset.diagrams = "done";
  } catch (err) {
    document.body.dataset.diagrams = "error";
    console.error(err);
  }
});
