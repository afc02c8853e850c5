// The rttest plugin's widget: only here so the tests can check how weftd
// serves a plugin's asset folder (/p/rttest/widget.js).
export async function mount(el) {
  el.textContent = 'rttest widget';
}
