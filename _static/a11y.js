// Accessibility fixes for the book's pages (instructors.md, "Accessibility").
//
// sphinx-togglebutton names every solution's button "Toggle hidden content", so a screen-reader user tabbing
// through a chapter hears the same words for each. Name each one after its exercise ("Solution to Exercise 4.1")
// and point it at the content it shows. Runs on "load", after sphinx-togglebutton has added its buttons.
window.addEventListener("load", () => {
  let exercise = null;
  document.querySelectorAll("div.exercise, div.solution").forEach((block) => {
    if (block.classList.contains("exercise")) {
      exercise = block;
      return;
    }
    const number = exercise && exercise.querySelector(".caption-number");
    const button = block.querySelector(":scope > .admonition-title button.toggle-button");
    const content = block.querySelector(":scope > section");
    if (!button) return;
    button.setAttribute("aria-label", number ? `Solution to ${number.textContent.trim()}` : "Solution");
    if (content) {
      content.id = `${block.id}-content`;
      button.setAttribute("aria-controls", content.id);
    }
  });
});
