// The zoom's map: the photo small, the zoom window drawn on it. A click or a tap
// centres the window there; the arrow keys move it by half a window (Shift: a whole
// one). The window moves here at once; Python hears the new centre as `picked`,
// fractions of the photo's width and height.
export default function ({ data, setTriggerValue, parentElement }) {
  let root = parentElement.querySelector(".zmap");
  if (!root) {
    root = document.createElement("div");
    root.className = "zmap";
    root.tabIndex = 0;
    root.innerHTML = '<img class="zmap-image" draggable="false" alt=""><div class="zmap-box"></div>';
    parentElement.appendChild(root);
  }
  const image = root.querySelector(".zmap-image");
  const box = root.querySelector(".zmap-box");
  if (image.getAttribute("src") !== data.src) image.setAttribute("src", data.src);
  root.setAttribute("aria-label", data.label);
  root.style.aspectRatio = data.aspect;
  let [left, top, width, height] = data.box;

  const place = () => {
    box.style.left = left * 100 + "%";
    box.style.top = top * 100 + "%";
    box.style.width = width * 100 + "%";
    box.style.height = height * 100 + "%";
    root.dataset.center = [(left + width / 2).toFixed(4), (top + height / 2).toFixed(4)].join(",");
  };
  const centre = (x, y) => {
    left = Math.min(1 - width, Math.max(0, x - width / 2));
    top = Math.min(1 - height, Math.max(0, y - height / 2));
    place();
    setTriggerValue("picked", { x: left + width / 2, y: top + height / 2 });
  };
  root.onclick = (event) => {
    const rect = root.getBoundingClientRect();
    centre((event.clientX - rect.left) / rect.width, (event.clientY - rect.top) / rect.height);
  };
  root.onkeydown = (event) => {
    const move = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[event.key];
    if (move === undefined) return;
    event.preventDefault();
    const share = event.shiftKey ? 1 : 0.5;
    centre(left + width / 2 + move[0] * width * share, top + height / 2 + move[1] * height * share);
  };
  place();
}
