// The keys page: the create form is sent by htmx; a 422 (a field's error) is swapped in like a 200,
// so the form comes back with what was typed and the error next to the field.
"use strict";
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status === 422 && event.detail.elt.closest("#keys-page")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
