//! Cross-crate scenario tests: the kernel, images, tools and runtime together,
//! as a researcher embedding libos would use them.

mod embedded;
