// Providers & models: the base URL field shows the chosen provider's default URL as its placeholder.
"use strict";
window.turnoutPages = window.turnoutPages || {};
window.turnoutPages.providers = (root) => {
  root.querySelectorAll("form").forEach((form) => {
    const provider = form.querySelector("select[name=provider]");
    const base = form.querySelector("input[name=api_base]");
    if (!provider || !base) return;
    const show = () => {
      const option = provider.selectedOptions[0];
      base.placeholder = (option && option.dataset.apiBase) || "https://…";
    };
    provider.addEventListener("change", show);
    show();
  });
};
